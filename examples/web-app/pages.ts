/** Plain HTML pages without any script; the stylesheet is the app's own /app.css. */
export function escapeHtml(value: string): string {
  return value.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

export function renderPage(appName: string, title: string, body: string): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(title)} · ${escapeHtml(appName)}</title>
<link rel="stylesheet" href="/app.css">
</head>
<body>
<main>
<p class="app">${escapeHtml(appName)}</p>
<h1>${escapeHtml(title)}</h1>
${body}
</main>
</body>
</html>
`;
}

/** A POST form with the session's CSRF token and one button. */
export function postButton(action: string, csrfToken: string, label: string, id: string): string {
  return `<form method="post" action="${action}" id="${id}">
<input type="hidden" name="csrf" value="${escapeHtml(csrfToken)}">
<button type="submit">${escapeHtml(label)}</button>
</form>`;
}

export const stylesheet = `body{font-family:system-ui,sans-serif;margin:0;background:#f4f5f7;color:#1d2330}
main{max-width:36rem;margin:2rem auto;padding:1.5rem;background:#fff;border-radius:8px}
.app{color:#5b6475;font-size:.9rem;margin:0}
h1{font-size:1.4rem;margin:.3rem 0 1rem}
form{display:inline-block;margin:0 .5rem .5rem 0}
button,a.button{font:inherit;padding:.5rem 1rem;border-radius:6px;border:1px solid #2f5bd3;background:#2f5bd3;color:#fff;text-decoration:none;cursor:pointer}
pre{background:#f4f5f7;padding:.75rem;overflow-x:auto;white-space:pre-wrap;word-break:break-all}
.error{color:#b42318}
`;
