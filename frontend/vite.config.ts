/// <reference types="vitest/config" />
import { readdirSync, rmSync } from 'node:fs'
import { fileURLToPath, URL } from 'node:url'
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

export default defineConfig(({ mode }) => ({
  // `vite --mode mock` serves a fake in-memory API for working on the layout
  // without the Go server; production builds never include it.
  plugins: [vue(), emptyDistKeepingKeep(), ...(mode === 'mock' ? [mockApi()] : [])],
  resolve: { alias: { '@': fileURLToPath(new URL('./src', import.meta.url)) } },
  build: {
    outDir,
    emptyOutDir: false,
    chunkSizeWarningLimit: 900,
    rollupOptions: {
      output: {
        // Separate, rarely changing vendor chunks cache well across releases.
        manualChunks(id) {
          if (!id.includes('node_modules')) return undefined
          if (id.includes('@codemirror') || id.includes('@lezer') || id.includes('codemirror')) return 'codemirror'
          if (id.includes('@xterm')) return 'xterm'
          if (id.includes('element-plus') || id.includes('@element-plus')) return 'element-plus'
          return 'vendor'
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
