/// <reference types="vitest/config" />
import { readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { fileURLToPath, URL } from 'node:url'
import { brotliCompressSync, constants, gzipSync } from 'node:zlib'
import { defineConfig, type Plugin } from 'vite'
import vue from '@vitejs/plugin-vue'
import { mockApi } from './mock/api'

const outDir = fileURLToPath(new URL('./dist', import.meta.url))
const goServer = 'http://localhost:8080'

// Vite's emptyOutDir would delete dist/.keep, which git tracks so that
// //go:embed all:dist compiles on a fresh clone; empty it ourselves instead.
function emptyDistKeepingKeep(): Plugin {
  return {
    name: 'pyide-empty-dist',
    apply: 'build',
    buildStart() {
      for (const name of readdirSync(outDir)) {
        if (name !== '.keep') rmSync(`${outDir}/${name}`, { recursive: true, force: true })
      }
    },
  }
}

// Slow links: each script and stylesheet is also written as .br and .gz,
// compressed once here at the best level rather than by the server on every
// request; pkg/server sends the one the browser accepts.
function precompress(): Plugin {
  return {
    name: 'pyide-precompress',
    apply: 'build',
    writeBundle() {
      const dir = `${outDir}/assets`
      for (const name of readdirSync(dir)) {
        if (!/\.(js|css|svg)$/.test(name)) continue
        const data = readFileSync(`${dir}/${name}`)
        if (data.length < 1024) continue // smaller than the headers it would save
        writeFileSync(`${dir}/${name}.br`, brotliCompressSync(data, { params: { [constants.BROTLI_PARAM_QUALITY]: 11 } }))
        writeFileSync(`${dir}/${name}.gz`, gzipSync(data, { level: 9 }))
      }
    },
  }
}

export default defineConfig(({ mode }) => ({
  // `vite --mode mock` serves a fake in-memory API for working on the layout
  // without the Go server; production builds never include it.
  plugins: [vue(), emptyDistKeepingKeep(), precompress(), ...(mode === 'mock' ? [mockApi()] : [])],
  resolve: { alias: { '@': fileURLToPath(new URL('./src', import.meta.url)) } },
  build: {
    outDir,
    emptyOutDir: false,
    chunkSizeWarningLimit: 900,
    rollupOptions: {
      output: {
        // The editor, the terminal and Vue itself change rarely: chunks of
        // their own cache well across releases, and the login page loads
        // neither the editor nor the terminal. Everything else (Element Plus,
        // markdown-it) goes with the screens that use it.
        manualChunks(id) {
          if (!id.includes('node_modules')) return undefined
          if (/[\\/](@codemirror|@lezer|codemirror)[\\/]/.test(id)) return 'codemirror'
          if (id.includes('@xterm')) return 'xterm'
          if (/node_modules[\\/](@vue|vue|vue-router|pinia)[\\/]/.test(id)) return 'vue'
          return undefined
        },
      },
    },
  },
  server: {
    proxy:
      mode === 'mock'
        ? undefined
        : {
            // The Host header passes through unchanged (no changeOrigin), so the
            // server's same-origin check compares the browser's Origin with the
            // dev server's own host and accepts both writes and the WebSocket.
            '/api': { target: goServer, ws: true },
            '/healthz': goServer,
          },
  },
  test: {
    environment: 'node',
    include: ['src/**/*.test.ts'],
  },
}))
