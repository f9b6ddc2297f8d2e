// How the editor shows a file: as text, or as a preview of a binary format.
export type Kind = 'text' | 'csv' | 'pdf' | 'image' | 'binary'

const images: Record<string, string> = {
  png: 'image/png',
  jpg: 'image/jpeg',
  jpeg: 'image/jpeg',
  gif: 'image/gif',
  webp: 'image/webp',
  bmp: 'image/bmp',
  svg: 'image/svg+xml',
  ico: 'image/x-icon',
}

export function extension(path: string): string {
  const name = path.slice(path.lastIndexOf('/') + 1)
  const dot = name.lastIndexOf('.')
  return dot <= 0 ? '' : name.slice(dot + 1).toLowerCase()
}

/** The kind decided by the name alone; null means "look at the bytes". */
export function kindByName(path: string): Kind | null {
  const ext = extension(path)
  if (ext === 'pdf') return 'pdf'
  if (ext in images) return 'image'
  if (ext === 'csv') return 'csv'
  return null
}

/** The MIME type for a preview blob (the server's Content-Type may be generic). */
export function previewType(path: string): string {
  const ext = extension(path)
  if (ext === 'pdf') return 'application/pdf'
  return images[ext] ?? 'application/octet-stream'
}

/** Decodes UTF-8 text; null when the bytes are not text (invalid UTF-8 or NUL bytes). */
export function decodeText(bytes: ArrayBuffer): string | null {
  try {
    const text = new TextDecoder('utf-8', { fatal: true }).decode(bytes)
    return text.includes('\0') ? null : text
  } catch {
    return null
  }
}

export function isPython(path: string): boolean {
  return extension(path) === 'py' || extension(path) === 'pyw'
}
