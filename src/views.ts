import { fileURLToPath } from 'node:url';
import pug from 'pug';

export type Views = { render(name: string, locals: Record<string, unknown>): string };

const viewsDir = fileURLToPath(new URL('../views/', import.meta.url));

/**
 * Compiles each pug template once, on first use. `globals` are locals every page gets (which optional links the
 * login page shows).
 */
export function createViews(globals: Record<string, unknown> = {}): Views {
  const compiled = new Map<string, pug.compileTemplate>();
  return {
    render(name, locals) {
      let template = compiled.get(name);
      if (!template) {
        template = pug.compileFile(`${viewsDir}${name}.pug`);
        compiled.set(name, template);
      }
      return template({ ...globals, ...locals });
    },
  };
}
