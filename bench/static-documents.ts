/** A static document as Latchkey answered it: the headers that describe the body, and the body. */
export type StaticDocument = { headers: Record<string, string>; body: string };

export const documentPaths = { discovery: '/.well-known/openid-configuration', jwks: '/.well-known/jwks.json' } as const;

// Headers about the connection or the moment, which every server writes itself.
const perResponse = new Set(['date', 'connection', 'keep-alive', 'transfer-encoding', 'content-length']);

/** Fetches Latchkey's discovery document and JWKS as they are served, for the ceiling apps to answer the same bytes. */
export async function captureDocuments(origin: string): Promise<Record<string, StaticDocument>> {
  const captured: Record<string, StaticDocument> = {};
  for (const path of Object.values(documentPaths)) {
    const response = await fetch(`${origin}${path}`);
    if (!response.ok) throw new Error(`${path} answered ${response.status}`);
    const headers = Object.fromEntries([...response.headers].filter(([name]) => !perResponse.has(name)));
    captured[path] = { headers, body: await response.text() };
  }
  return captured;
}

/** In a ceiling app: the documents the bench passed in BENCH_DOCUMENTS, by path. */
export function readDocuments(): Map<string, StaticDocument> {
  const raw = process.env.BENCH_DOCUMENTS;
  if (!raw) throw new Error('BENCH_DOCUMENTS is not set');
  return new Map(Object.entries(JSON.parse(raw) as Record<string, StaticDocument>));
}
