// The stock automerge-repo sync server, for the benchmark: a Repo with the stock WebSocket
// server adapter and file-system storage, wired the way the automerge-repo-sync-server project
// does (no share policy: it only answers what peers ask for). Nothing here is tuned; it is the
// baseline Rapporteur is compared against.
//
// Usage: node server.mjs PORT DATA_DIR. Prints "listening on PORT" once bound.
import http from "node:http"
import os from "node:os"
import { WebSocketServer } from "ws"
import { Repo } from "@automerge/automerge-repo"
import { NodeWSServerAdapter } from "@automerge/automerge-repo-network-websocket"
import { NodeFSStorageAdapter } from "@automerge/automerge-repo-storage-nodefs"

const port = Number(process.argv[2] ?? 3030)
const dir = process.argv[3] ?? ".amrg"

const socket = new WebSocketServer({ noServer: true })
const server = http.createServer((req, res) => {
  res.writeHead(200, { "content-type": "text/plain" })
  res.end("automerge-repo sync server")
})

new Repo({
  network: [new NodeWSServerAdapter(socket)],
  storage: new NodeFSStorageAdapter(dir),
  peerId: `storage-server-${os.hostname()}`,
  // As in automerge-repo-sync-server: do not announce documents to peers unasked.
  sharePolicy: async () => false,
})

server.on("upgrade", (request, sock, head) => {
  socket.handleUpgrade(request, sock, head, ws => socket.emit("connection", ws, request))
})
server.listen(port, "127.0.0.1", () => console.log(`listening on ${port}`))
