// Meeting time: converts agenda times (HH:MM on a date, in the meeting's IANA time zone) to instants
// and says whether a session slot has not started, is running (and how long is left) or has ended.

/** Offset of `timeZone` from UTC at `instant`, in milliseconds (positive east of Greenwich). */
export function zoneOffset(instant: number, timeZone: string): number {
  const parts = new Intl.DateTimeFormat("en-US", {
    timeZone,
    hourCycle: "h23",
    year: "numeric",
    month: "2-digit",
    day: "2-digit",
    hour: "2-digit",
    minute: "2-digit",
    second: "2-digit",
  }).formatToParts(new Date(instant))
  const get = (type: string) => Number(parts.find(p => p.type === type)?.value ?? 0)
  const asUtc = Date.UTC(get("year"), get("month") - 1, get("day"), get("hour"), get("minute"), get("second"))
  return asUtc - Math.floor(instant / 1000) * 1000
}

/** The instant of wall-clock `time` ("HH:MM") on `date` ("YYYY-MM-DD") in `timeZone`. */
export function zonedInstant(date: string, time: string, timeZone: string): number {
  const [y, mo, d] = date.split("-").map(Number)
  const [h, mi] = time.split(":").map(Number)
  const wall = Date.UTC(y ?? 1970, (mo ?? 1) - 1, d ?? 1, h ?? 0, mi ?? 0)
  let guess = wall - zoneOffset(wall, timeZone)
  // a second pass settles the offset when the first guess crossed a transition
  guess = wall - zoneOffset(guess, timeZone)
  return guess
}

export type SlotStatus =
  | { state: "not-started"; startsIn: number; start: number; end: number }
  | { state: "running"; left: number; start: number; end: number }
  | { state: "ended"; start: number; end: number }

export function slotStatus(
  slot: { date: string; start: string; end: string },
  timeZone: string,
  now: number,
): SlotStatus {
  const start = zonedInstant(slot.date, slot.start, timeZone)
  const end = zonedInstant(slot.date, slot.end, timeZone)
  if (now < start) return { state: "not-started", startsIn: start - now, start, end }
  if (now >= end) return { state: "ended", start, end }
  return { state: "running", left: end - now, start, end }
}

/** "2 h 05 min", "12 min", "3 d 4 h". */
export function formatDuration(ms: number): string {
  const minutes = Math.max(0, Math.ceil(ms / 60_000))
  const days = Math.floor(minutes / 1440)
  const hours = Math.floor((minutes % 1440) / 60)
  const mins = minutes % 60
  if (days > 0) return `${days} d ${hours} h`
  if (hours > 0) return `${hours} h ${String(mins).padStart(2, "0")} min`
  return `${mins} min`
}

/** Short human text for a slot's status. */
export function describeSlot(status: SlotStatus): string {
  switch (status.state) {
    case "not-started":
      return `Not started · starts in ${formatDuration(status.startsIn)}`
    case "running":
      return `${formatDuration(status.left)} left`
    case "ended":
      return "Ended"
  }
}

/** "Tue 5 Dec" style date of an ISO date, independent of the viewer's zone. */
export function formatDay(date: string): string {
  const [y, m, d] = date.split("-").map(Number)
  return new Intl.DateTimeFormat("en-GB", {
    weekday: "short",
    day: "numeric",
    month: "short",
    timeZone: "UTC",
  }).format(new Date(Date.UTC(y ?? 1970, (m ?? 1) - 1, d ?? 1)))
}

/** A timestamp in the meeting's zone: "5 Dec, 12:41". */
export function formatInstant(ms: number, timeZone: string): string {
  return new Intl.DateTimeFormat("en-GB", {
    day: "numeric",
    month: "short",
    hour: "2-digit",
    minute: "2-digit",
    hourCycle: "h23",
    timeZone,
  }).format(new Date(ms))
}
