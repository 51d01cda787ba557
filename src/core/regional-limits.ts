/**
 * The largest downlink application payload (FRMPayload, "N") a device can receive, from its region
 * and its latest uplink's data rate: the data lives here, in one place.
 *
 * Source: LoRaWAN Regional Parameters RP002-1.0.4 (LoRa Alliance, 2022): per region, the data
 * rate table, the RX1 data rate table (downlink data rate from the uplink's, here for the default
 * RX1DROffset 0), and the maximum payload size table (N, the values without repeater support,
 * which is what network servers apply). N assumes no MAC commands in FOpts: a network server that
 * piggybacks MAC commands leaves less.
 *
 * The check is for Class A's RX1, where a network server answers an uplink; RX2 (a lower data
 * rate in most regions) can carry less, and is not checked.
 */

export type Region = 'EU868' | 'US915' | 'AU915' | 'AS923' | 'KR920' | 'IN865'
export const REGIONS: readonly Region[] = ['EU868', 'US915', 'AU915', 'AS923', 'KR920', 'IN865']

interface RegionTable {
  /** Uplink data rates: [spreading factor, bandwidth kHz] by index (DR0, DR1, …); null where none. */
  uplink: Array<[number, number] | null>
  /** RX1 downlink data rate for each uplink data rate (RX1DROffset 0). */
  rx1: number[]
  /** N: the largest FRMPayload by downlink data rate; null where the data rate does not exist. */
  maxPayload: Array<number | null>
}

/** EU863-870 and the regions that copy its first data rates (RP002-1.0.4 §2.2, §2.8, §2.10, §2.11). */
const SF12_TO_SF7_125: Array<[number, number]> = [[12, 125], [11, 125], [10, 125], [9, 125], [8, 125], [7, 125]]

const TABLES: Record<Region, RegionTable> = {
  // §2.2: DR0–5 SF12–SF7/125 kHz, DR6 SF7/250 kHz, DR7 FSK; N 51 51 51 115 242 242 242 242.
  EU868: { uplink: [...SF12_TO_SF7_125, [7, 250]], rx1: [0, 1, 2, 3, 4, 5, 6, 7], maxPayload: [51, 51, 51, 115, 242, 242, 242, 242] },
  // §2.5: uplink DR0–3 SF10–SF7/125 kHz, DR4 SF8/500 kHz; downlink DR8–13 SF12–SF7/500 kHz; RX1 DR0→DR10 … DR4→DR13.
  // N downlink: DR8 53, DR9 129, DR10–13 242.
  US915: {
    uplink: [[10, 125], [9, 125], [8, 125], [7, 125], [8, 500]],
    rx1: [10, 11, 12, 13, 13],
    maxPayload: [11, 53, 125, 242, 242, null, null, null, 53, 129, 242, 242, 242, 242],
  },
  // §2.7: uplink DR0–5 SF12–SF7/125 kHz, DR6 SF8/500 kHz; downlink DR8–13 as US915; RX1 DR0→DR8 … DR5→DR13, DR6→DR13.
  AU915: {
    uplink: [...SF12_TO_SF7_125, [8, 500]],
    rx1: [8, 9, 10, 11, 12, 13, 13],
    maxPayload: [51, 51, 51, 115, 242, 242, 242, null, 53, 129, 242, 242, 242, 242],
  },
  // §2.9, DownlinkDwellTime 0: as EU868. (With the dwell time limited by TxParamSetupReq, less.)
  AS923: { uplink: [...SF12_TO_SF7_125, [7, 250]], rx1: [0, 1, 2, 3, 4, 5, 6, 7], maxPayload: [51, 51, 51, 115, 242, 242, 242, 242] },
  // §2.13: DR0–5 SF12–SF7/125 kHz.
  KR920: { uplink: SF12_TO_SF7_125, rx1: [0, 1, 2, 3, 4, 5], maxPayload: [51, 51, 51, 115, 242, 242] },
  // §2.14: DR0–5 SF12–SF7/125 kHz (DR7 FSK).
  IN865: { uplink: SF12_TO_SF7_125, rx1: [0, 1, 2, 3, 4, 5], maxPayload: [51, 51, 51, 115, 242, 242, null, 242] },
}

export interface UplinkRadio { spreadingFactor?: number, bandwidthKHz?: number }

export interface PayloadLimit { region: Region, uplinkDataRate: number, downlinkDataRate: number, maxPayload: number }

/**
 * The limit for a downlink in RX1 after an uplink with this radio, or undefined when the region
 * has no uplink data rate of that spreading factor and bandwidth (a bandwidth not reported is
 * taken as 125 kHz, unless only one bandwidth has that spreading factor).
 */
export function downlinkLimit (region: Region, radio: UplinkRadio): PayloadLimit | undefined {
  const t = TABLES[region]
  const sf = radio.spreadingFactor
  if (sf === undefined) return undefined
  const candidates = t.uplink.map((r, dr) => ({ r, dr })).filter(({ r }) => r !== null && r[0] === sf && (radio.bandwidthKHz === undefined || r[1] === radio.bandwidthKHz))
  const pick = candidates.find(c => radio.bandwidthKHz !== undefined || c.r![1] === 125) ?? candidates[0]
  if (pick === undefined) return undefined
  const downlinkDataRate = t.rx1[pick.dr]
  const maxPayload = downlinkDataRate === undefined ? undefined : t.maxPayload[downlinkDataRate]
  if (downlinkDataRate === undefined || maxPayload === undefined || maxPayload === null) return undefined
  return { region, uplinkDataRate: pick.dr, downlinkDataRate, maxPayload }
}
