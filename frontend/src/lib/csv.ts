// A small RFC 4180 CSV reader for previews: quoted fields, doubled quotes,
// newlines inside quotes, CRLF or LF. Stops at maxRows so a huge file cannot
// freeze the tab.
export interface Table {
  rows: string[][]
  truncated: boolean
}

export function parseCSV(text: string, maxRows = 1000): Table {
  const rows: string[][] = []
  let row: string[] = []
  let field = ''
  let quoted = false
  let i = 0
  const endRow = () => {
    row.push(field)
    rows.push(row)
    row = []
    field = ''
  }
  if (text.charCodeAt(0) === 0xfeff) i = 1 // byte order mark from spreadsheet exports
  for (; i < text.length; i++) {
    const c = text[i]
    if (quoted) {
      if (c === '"') {
        if (text[i + 1] === '"') {
          field += '"'
          i++
        } else quoted = false
      } else field += c
      continue
    }
    if (c === '"' && field === '') quoted = true
    else if (c === ',') {
      row.push(field)
      field = ''
    } else if (c === '\n' || c === '\r') {
      if (c === '\r' && text[i + 1] === '\n') i++
      endRow()
      if (rows.length >= maxRows) return { rows, truncated: i + 1 < text.length }
    } else field += c
  }
  if (field !== '' || row.length > 0) endRow()
  return { rows, truncated: false }
}
