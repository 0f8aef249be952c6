// Vite build of the web app into web/dist, which the server serves with an SPA fallback.
// Automerge ships its core as WebAssembly, imported as an ES module: vite-plugin-wasm handles that.
import { defineConfig, type PluginOption } from "vite"
import wasm from "vite-plugin-wasm"

export default defineConfig({
  plugins: [wasm()],
  build: { target: "es2022", sourcemap: true, chunkSizeWarningLimit: 4000 },
  worker: { format: "es", plugins: () => [wasm()] as PluginOption[] },
  server: {
    proxy: {
      "/api": "http://127.0.0.1:8080",
      "/join": "http://127.0.0.1:8080",
      "/sync": { target: "ws://127.0.0.1:8080", ws: true },
    },
  },
  test: { include: ["test/**/*.test.ts"], environment: "node" },
})
