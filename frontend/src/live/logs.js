// The log tail's filter: a plain substring, case-insensitive; `/re/` for a regular expression.
// A bad expression filters nothing and says why, instead of throwing in render.
export function lineFilter(text) {
  if (!text) return { test: () => true, error: null };
  const re = /^\/(.+)\/([imsu]*)$/.exec(text);
  if (re) {
    try {
      const rx = new RegExp(re[1], re[2].includes('i') ? re[2] : `${re[2]}i`);
      return { test: (line) => rx.test(line), error: null };
    } catch (err) {
      return { test: () => true, error: err.message };
    }
  }
  const needle = text.toLowerCase();
  return { test: (line) => line.toLowerCase().includes(needle), error: null };
}
