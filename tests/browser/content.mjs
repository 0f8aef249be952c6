// Sample outcome content for the screenshot run, written through the stock automerge-repo client
// as a co-facilitator (the same path any script would take): a few bullets per action group, in
// English with some Spanish, French and Arabic, as delegations drafted them in 2017.
import { randomUUID } from "node:crypto"
import { ImmutableString, Repo } from "@automerge/automerge-repo"
import { WebSocketClientAdapter } from "@automerge/automerge-repo-network-websocket"
import { api, waitFor } from "../lib/server.mjs"
import { SLUG } from "./browser.mjs"

const B = (text, proposedBy = [], tags = [], status = "proposed") => ({ text, proposedBy, tags, status })

export const SAMPLE = {
  1: {
    commitments: [
      B("Ensure access to basic services for all migrants, regardless of their migration status.", ["Mexico", "Philippines"], ["gcm-objective-15"], "agreed"),
      B("Establish firewalls between immigration enforcement and public service providers.", ["Switzerland", "Ecuador"], ["gcm-objective-15"]),
      B("Garantizar la protección consular a lo largo de todo el ciclo migratorio.", ["Guatemala", "El Salvador"], ["gcm-objective-14"]),
    ],
    implementation: [
      B("Develop national referral mechanisms that identify migrants in vulnerable situations at borders and in transit, train first responders, social workers and border officials to use them, share good practices across regions and report each year on the number of people assisted, the services they received and the gaps that remain in coverage.", ["Germany"], ["gcm-objective-7"]),
    ],
    "follow-up": [],
  },
  2: {
    commitments: [
      B("Promote the inclusion of migrants through language courses, mentoring and access to the labour market.", ["Canada", "Morocco"], ["gcm-objective-16"], "agreed"),
      B("Reconnaître le rôle des diasporas dans le développement des pays d'origine.", ["Senegal", "France"], ["gcm-objective-19"]),
    ],
    implementation: [B("Support community-based sponsorship programmes with multi-year funding.", ["Canada"], ["gcm-objective-16"], "bracketed")],
    "follow-up": [],
  },
  3: {
    commitments: [
      B("Recognise local authorities as first responders in the reception and integration of migrants.", ["Mayors Mechanism", "Spain"], ["gcm-objective-16"], "agreed"),
      B("تعزيز قدرات السلطات المحلية على تقديم الخدمات للمهاجرين", ["Morocco", "Jordan"], ["gcm-objective-15"]),
    ],
    implementation: [B("Create a global platform for cities to exchange practices on migrant inclusion.", ["Mayors Mechanism"], [])],
    "follow-up": [B("Include local governments in the review of the global compact.", ["Ecuador"], ["gcm-objective-23"])],
  },
  4: {
    commitments: [
      B("Expand and diversify pathways for regular migration, including for labour and family reunification.", ["Philippines", "Sri Lanka"], ["gcm-objective-5"], "agreed"),
      B("Use immigration detention only as a measure of last resort and work towards alternatives.", ["Mexico", "Uruguay"], ["gcm-objective-13"], "bracketed"),
    ],
    implementation: [B("Invest in disaggregated migration data as a basis for evidence-based policies.", ["Switzerland"], ["gcm-objective-1"])],
    "follow-up": [],
  },
  5: {
    commitments: [B("Strengthen regional consultative processes as platforms for implementation.", ["Costa Rica", "Ethiopia"], ["gcm-objective-23"])],
    implementation: [B("Develop regional agreements on the portability of social security entitlements.", ["Colombia"], ["gcm-objective-22"])],
    "follow-up": [],
  },
  6: {
    commitments: [B("Ensure a state-led review of the global compact every four years at the General Assembly.", ["Switzerland", "Mexico"], ["gcm-objective-23"], "agreed")],
    implementation: [B("Establish a capacity-building mechanism within the United Nations.", ["Bangladesh"], ["gcm-objective-23"])],
    "follow-up": [B("Hold an International Migration Review Forum with the participation of all stakeholders.", ["Portugal"], ["gcm-objective-23"])],
  },
}

/** Writes SAMPLE into the group documents and waits until the server has every change. */
export async function fillSample(server, cofacToken) {
  const me = (await api(server, cofacToken, "GET", "/api/me")).body.person
  const meeting = (await api(server, cofacToken, "GET", `/api/meetings/${SLUG}`)).body
  const repo = new Repo({ network: [new WebSocketClientAdapter(`${server.wsUrl}?token=${cofacToken}`)] })
  try {
    for (const group of meeting.groups) {
      const content = SAMPLE[group.number]
      if (!content) continue
      const handle = await repo.find(group.outcomeDocUrl)
      handle.change(doc => {
        for (const section of doc.sections) {
          for (const b of content[section.id] ?? []) {
            // schema.md: `text` is Text (a JS string), the other strings are scalar strings
            const scalar = v => new ImmutableString(v)
            section.bullets.push({
              id: scalar(randomUUID()),
              text: b.text,
              proposedBy: b.proposedBy.map(scalar),
              tags: b.tags.map(scalar),
              status: scalar(b.status),
              createdBy: scalar(me.id),
              createdAt: Date.now(),
            })
          }
        }
      })
    }
    // the server has everything once a second, fresh client reads it from there
    const reader = new Repo({ network: [new WebSocketClientAdapter(`${server.wsUrl}?token=${cofacToken}`)] })
    try {
      for (const group of meeting.groups) {
        const content = SAMPLE[group.number]
        if (!content) continue
        const want = Object.values(content).flat().length
        const handle = await reader.find(group.outcomeDocUrl)
        await waitFor(() => handle.doc().sections.reduce((n, s) => n + s.bullets.length, 0) >= want, {
          timeout: 15_000,
          what: `group ${group.number} content on the server`,
        })
      }
    } finally {
      await reader.shutdown()
    }
  } finally {
    await repo.shutdown()
  }
}
