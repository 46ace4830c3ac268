// `node --import ./without-dashboard.mjs`: @dptrain/dashboard cannot be found, as in the GPU worker image, which
// does not install it (see worker-image.test.ts).
import { register } from 'node:module';

const hook = `export async function resolve(specifier, context, next) {
  if (specifier === '@dptrain/dashboard' || specifier.startsWith('@dptrain/dashboard/')) {
    const err = new Error("Cannot find package '@dptrain/dashboard' (left out, as in the worker image)");
    err.code = 'ERR_MODULE_NOT_FOUND';
    throw err;
  }
  return next(specifier, context);
}`;
register(`data:text/javascript,${encodeURIComponent(hook)}`);
