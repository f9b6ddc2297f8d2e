// Shapes of the HTTP API (docs/http-api.md): the contract with the Go server.

export type Role = 'student' | 'ta' | 'professor' | 'admin'

export interface User {
  username: string
  display_name: string
  role: Role
  /** The password was handed out (roster, reset): nothing but changing it is allowed. */
  must_change_password?: boolean
}

export interface Entry {
  name: string
  path: string
  type: 'file' | 'dir'
  size: number
  modified: string
  writable: boolean
  /** A symbolic link a program made: listed, never followed. */
  link?: boolean
}

/** A student's storage use, in bytes. */
export interface Quota {
  used: number
  limit: number
}

export interface Listing {
  path: string
  entries: Entry[]
  quota?: Quota
}

export interface SaveResult {
  path: string
  version: string
  size: number
}

export interface Revision {
  id: string | number
  size: number
  hash: string
  author: string
  created: string
}
