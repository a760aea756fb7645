{
  "targets": [
    {
      "target_name": "affinityd",
      "sources": [
        "native/affinity_table.cc",
        "native/authenticator.cc",
        "native/client_key.cc",
        "native/endpoint_registry.cc",
        "native/frame.cc",
        "native/messages.cc",
        "native/multicast_socket.cc",
        "native/replay_window.cc",
        "native/responder.cc",
        "native/service_notify.cc",
        "native/splice_pump.cc",
        "native/table_digest.cc",
        "native/addon/addon.cc",
        "native/addon/js_codec.cc",
        "native/addon/js_responder.cc",
        "native/addon/js_splice_pump.cc",
        "native/addon/js_table.cc",
        "native/addon/napi_util.cc"
      ],
      "include_dirs": ["<!@(node -p \"require('node-addon-api').include\")"],
      "defines": ["NAPI_VERSION=8", "NAPI_CPP_EXCEPTIONS", "NODE_ADDON_API_DISABLE_DEPRECATED"],
      "cflags!": ["-fno-exceptions"],
      "cflags_cc!": ["-fno-exceptions", "-std=gnu++17"],
      "cflags_cc": ["-std=c++17", "-O3", "-Wall", "-Wextra", "-Wno-unused-parameter", "-Wno-missing-field-initializers"]
    }
  ]
}
