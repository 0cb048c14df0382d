/** REST calls with the page's bearer token; errors come back as problem+json with a code. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    /** The problem's `details` (which lesson is in the way, which field), when it has them. */
    readonly details: Record<string, unknown> = {},
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

export interface ApiOptions {
  method?: 'GET' | 'POST' | 'PUT' | 'DELETE';
  body?: unknown;
  signal?: AbortSignal;
}

/** An empty token sends no authorization (a board trading its device credential). */
export async function api<T>(token: string, path: string, opts: ApiOptions = {}): Promise<T> {
  const headers: Record<string, string> = { accept: 'application/json' };
  if (token) headers['authorization'] = `Bearer ${token}`;
  if (opts.body !== undefined) headers['content-type'] = 'application/json';
  let res: Response;
  try {
    res = await fetch(path, {
      method: opts.method ?? 'GET',
      headers,
      ...(opts.body !== undefined ? { body: JSON.stringify(opts.body) } : {}),
      ...(opts.signal ? { signal: opts.signal } : {}),
      cache: 'no-store',
    });
  } catch (err) {
    if ((err as Error).name === 'AbortError') throw err;
    throw new ApiError(0, 'DISCONNECTED', 'the server cannot be reached');
  }
  if (!res.ok) {
    let code = `HTTP_${res.status}`;
    let detail = res.statusText;
    let details: Record<string, unknown> = {};
    try {
      const problem = (await res.json()) as { code?: string; detail?: string; details?: Record<string, unknown> };
      code = problem.code ?? code;
      detail = problem.detail ?? detail;
      details = problem.details ?? details;
    } catch {
      /* not problem+json */
    }
    throw new ApiError(res.status, code, detail, details);
  }
  if (res.status === 204) return undefined as T;
  return (await res.json()) as T;
}

/** Downloads a protected file (bearer header, so no plain link) and hands it to the browser to save. */
export async function downloadWithToken(token: string, path: string, filename: string): Promise<void> {
  const res = await fetch(path, { headers: { authorization: `Bearer ${token}` } });
  if (!res.ok) throw new ApiError(res.status, `HTTP_${res.status}`, res.statusText);
  const url = URL.createObjectURL(await res.blob());
  const a = document.createElement('a');
  a.href = url;
  a.download = filename;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
}
