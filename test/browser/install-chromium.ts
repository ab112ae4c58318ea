import { execFileSync } from 'node:child_process';
import fs from 'node:fs';

export const chromiumPath = '/usr/bin/chromium';

/** vitest global setup: Debian's chromium, installed with apt when this machine does not have it yet. */
export default function installChromium() {
  if (fs.existsSync(chromiumPath)) return;
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  execFileSync('apt-get', ['update'], { stdio: 'inherit', env });
  execFileSync('apt-get', ['install', '-y', 'chromium'], { stdio: 'inherit', env });
}
