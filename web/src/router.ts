// Routes of the single-page app. The server answers every non-API path with index.html.
export type Route =
  | { page: "root" }
  | { page: "home"; slug: string }
  | { page: "group"; slug: string; group: number }
  | { page: "dashboard"; slug: string }
  | { page: "summary"; slug: string }
  | { page: "not-found"; path: string }

export function parseRoute(pathname: string): Route {
  const parts = pathname.split("/").filter(Boolean).map(decodeURIComponent)
  if (parts.length === 0) return { page: "root" }
  if (parts[0] === "m" && parts[1]) {
    const slug = parts[1]
    if (parts.length === 2) return { page: "home", slug }
    if (parts.length === 3 && parts[2] === "dashboard") return { page: "dashboard", slug }
    if (parts.length === 3 && parts[2] === "summary") return { page: "summary", slug }
    if (parts.length === 4 && parts[2] === "groups" && /^[1-9]\d*$/.test(parts[3] ?? "")) {
      return { page: "group", slug, group: Number(parts[3]) }
    }
  }
  return { page: "not-found", path: pathname }
}

export const homePath = (slug: string) => `/m/${encodeURIComponent(slug)}`
export const groupPath = (slug: string, n: number) => `${homePath(slug)}/groups/${n}`
export const dashboardPath = (slug: string) => `${homePath(slug)}/dashboard`
export const summaryPath = (slug: string) => `${homePath(slug)}/summary`
