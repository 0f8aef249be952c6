// A TCP proxy standing in for a load balancer in front of several server nodes: it forwards
// every new connection to the current target, and `retarget` sends the next ones elsewhere
// (as a load balancer does when a node fails its health check).
import net from "node:net"

export async function startProxy(target) {
  let current = target
  const sockets = new Set()
  const server = net.createServer(client => {
    const upstream = net.connect(current.port, current.host)
    sockets.add(client)
    sockets.add(upstream)
    client.pipe(upstream)
    upstream.pipe(client)
    const end = () => {
      client.destroy()
      upstream.destroy()
      sockets.delete(client)
      sockets.delete(upstream)
    }
    client.on("error", end)
    upstream.on("error", end)
    client.on("close", end)
    upstream.on("close", end)
  })
  await new Promise(resolve => server.listen(0, "127.0.0.1", resolve))
  const { port } = server.address()
  return {
    url: `http://127.0.0.1:${port}`,
    wsUrl: `ws://127.0.0.1:${port}/sync`,
    retarget(next) {
      current = next
    },
    async close() {
      for (const s of sockets) s.destroy()
      await new Promise(resolve => server.close(resolve))
    },
  }
}

/** { host, port } of an `http://host:port` URL. */
export function hostPort(url) {
  const u = new URL(url)
  return { host: u.hostname, port: Number(u.port) }
}
