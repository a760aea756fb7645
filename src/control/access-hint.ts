// Why this user may not connect to a control socket, in words that say what
// to change: the first directory on the way it cannot enter, or the socket
// file it cannot write, with owner, group and mode, and the group to join.
import { accessSync, constants, readFileSync, statSync } from 'node:fs';
import { dirname } from 'node:path';

function nameOf(file: string, id: number): string {
  try {
    const line = readFileSync(file, 'utf8').split('\n').find((l) => l.split(':')[2] === String(id));
    return line ? line.split(':')[0] : String(id);
  } catch {
    return String(id);
  }
}

const describe = (path: string) => {
  const st = statSync(path);
  return { owner: nameOf('/etc/passwd', st.uid), group: nameOf('/etc/group', st.gid), mode: (st.mode & 0o7777).toString(8).padStart(4, '0') };
};

export function accessHint(socketPath: string): string {
  try {
    const dirs: string[] = [];
    for (let d = dirname(socketPath); ; d = dirname(d)) {
      dirs.unshift(d);
      if (dirname(d) === d) break;
    }
    for (const d of dirs) {
      try {
        accessSync(d, constants.X_OK);
      } catch {
        const x = describe(d);
        return `permission denied: cannot enter ${d} (${x.owner}:${x.group} ${x.mode}); it must be searchable by the socket's users (its unit's RuntimeDirectoryMode), or join group ${x.group}`;
      }
    }
    const x = describe(socketPath);
    return `permission denied: ${socketPath} is ${x.owner}:${x.group} ${x.mode}; join group ${x.group} (usermod -aG ${x.group} USER, then log in again) or run as root`;
  } catch (e) {
    return `permission denied (${(e as Error).message})`;
  }
}
