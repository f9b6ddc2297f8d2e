// File endpoints of the HTTP API, typed.
import { getJSON, request, sendJSON, withPath } from './http'
import type { Listing, Revision, SaveResult } from './types'

export const contentURL = (path: string) => withPath('/api/files/content', path)
/**
 * The same bytes at an address that ends in the file's name: a browser's PDF
 * viewer titles the document by it ("week1.pdf", not a random id).
 */
export const viewURL = (path: string) => withPath(`/api/files/content/${encodeURIComponent(path.slice(path.lastIndexOf('/') + 1))}`, path)
export const downloadURL = (path: string) => withPath('/api/files/download', path)

export function list(path: string): Promise<Listing> {
  return getJSON<Listing>(withPath('/api/files', path))
}

export interface Content {
  bytes: ArrayBuffer
  version: string
  contentType: string
}

export async function read(path: string, url = contentURL(path)): Promise<Content> {
  const res = await request('GET', url)
  return {
    bytes: await res.arrayBuffer(),
    version: res.headers.get('ETag') ?? '',
    contentType: res.headers.get('Content-Type') ?? '',
  }
}

/** Writes the file; with a version the server answers 409 if the file changed since. */
export async function write(path: string, text: string, version?: string): Promise<SaveResult> {
  const headers: Record<string, string> = { 'Content-Type': 'application/octet-stream' }
  if (version) headers['If-Match'] = version
  const res = await request('PUT', contentURL(path), { body: text, headers })
  const result = (await res.json()) as SaveResult
  // The ETag header has the same form as the one GET gave (what If-Match must
  // echo); the body's version is the fallback.
  result.version = res.headers.get('ETag') ?? result.version ?? ''
  return result
}

export const create = (path: string, type: 'file' | 'dir') => sendJSON('POST', '/api/files', { path, type })
export const move = (from: string, to: string) => sendJSON('POST', '/api/files/move', { from, to })
export const copy = (from: string, to: string) => sendJSON('POST', '/api/files/copy', { from, to })
export const remove = (path: string) => request('DELETE', withPath('/api/files', path))

export async function upload(dir: string, files: File[]): Promise<void> {
  const form = new FormData()
  for (const f of files) form.append('files', f, f.name)
  await request('POST', withPath('/api/files/upload', dir), { body: form })
}

export async function revisions(path: string): Promise<Revision[]> {
  const data = await getJSON<{ revisions: Revision[] | null }>(withPath('/api/files/revisions', path))
  return data.revisions ?? []
}

/** The text of one revision: what Restore would bring back. */
export async function revisionText(path: string, revision: Revision['id']): Promise<ArrayBuffer> {
  const res = await request('GET', `${withPath('/api/files/revisions/content', path)}&revision=${encodeURIComponent(String(revision))}`)
  return res.arrayBuffer()
}

export const restore = (path: string, revision: Revision['id']) =>
  sendJSON('POST', '/api/files/restore', { path, revision })

export interface TrashItem {
  id: number
  path: string
  type: 'file' | 'dir'
  size: number
  deleted: string
  expires: string
}

export async function trash(): Promise<TrashItem[]> {
  const data = await getJSON<{ entries: TrashItem[] | null }>('/api/files/trash')
  return data.entries ?? []
}

export const restoreTrash = (id: number) => sendJSON('POST', '/api/files/trash/restore', { id })
/** Deletes one item of the trash for good, or with no id everything in it. */
export const purgeTrash = (id?: number) =>
  request('DELETE', id === undefined ? '/api/files/trash' : `/api/files/trash?id=${encodeURIComponent(String(id))}`)
