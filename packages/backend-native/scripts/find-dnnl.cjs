// Prints where oneDNN lives, for binding.gyp: `node find-dnnl.cjs include|lib|check`.
// Searches $DNNL_ROOT (include/, lib/) only when set; else the Debian/Ubuntu multiarch paths, then /usr/local.
'use strict';
const fs = require('node:fs');
const path = require('node:path');

function candidates() {
  const out = [];
  const root = process.env.DNNL_ROOT || process.env.DNNLROOT;
  // An explicit root is the only place searched.
  if (root) return [{ include: path.join(root, 'include'), libs: [path.join(root, 'lib'), path.join(root, 'lib64')] }];
  out.push({ include: '/usr/include', libs: ['/usr/lib/x86_64-linux-gnu', '/usr/lib/aarch64-linux-gnu', '/usr/lib64', '/usr/lib'] });
  out.push({ include: '/usr/local/include', libs: ['/usr/local/lib', '/usr/local/lib64'] });
  return out;
}

function find() {
  for (const c of candidates()) {
    if (!fs.existsSync(path.join(c.include, 'dnnl.hpp'))) continue;
    const lib = c.libs.find((d) => fs.existsSync(path.join(d, 'libdnnl.so')));
    if (lib) return { include: c.include, lib };
  }
  return null;
}

module.exports = { find };

if (require.main === module) {
  const found = find();
  const what = process.argv[2] || 'check';
  if (!found) {
    if (what !== 'check') process.stderr.write('oneDNN not found (install libdnnl-dev or set DNNL_ROOT)\n');
    process.exit(1);
  }
  process.stdout.write(what === 'lib' ? found.lib : what === 'include' ? found.include : JSON.stringify(found));
}
