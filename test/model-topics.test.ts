/** The normalized topic layout, built and parsed in one module (src/model/topics.ts). */
import { describe, it, expect } from 'vitest'
import { commandOf, deviceFilter, deviceTopic, gatewayStatusTopic, parseDeviceTopic, parseGatewayStatusTopic } from '../src/model/topics.js'

describe('normalized topics', () => {
  it('builds and parses device topics, outcomes included', () => {
    expect(deviceTopic('lorabridge', 'farm', '0011223344556677', 'down/queued')).toBe('lorabridge/farm/devices/0011223344556677/down/queued')
    expect(parseDeviceTopic('lorabridge', 'lorabridge/farm/devices/0011223344556677/down/queued')).toEqual({ app: 'farm', devEui: '0011223344556677', kind: 'down/queued' })
    expect(parseDeviceTopic('lorabridge', 'lorabridge/farm/devices/0011223344556677')).toBeUndefined()
    expect(parseDeviceTopic('lorabridge', 'other/farm/devices/0011223344556677/up')).toBeUndefined()
    expect(parseDeviceTopic('lorabridge', 'lorabridge/farm/gadgets/0011223344556677/up')).toBeUndefined()
    expect(deviceFilter('lb', 'up')).toBe('lb/+/devices/+/up')
  })

  it('recognizes commands only as exactly …/down and …/clear', () => {
    expect(commandOf('lb', 'lb/farm/devices/0011223344556677/down')).toEqual({ app: 'farm', devEui: '0011223344556677', command: 'down' })
    expect(commandOf('lb', 'lb/farm/devices/0011223344556677/clear')?.command).toBe('clear')
    expect(commandOf('lb', 'lb/farm/devices/0011223344556677/down/queued')).toBeUndefined()
    expect(commandOf('lb', 'lb/farm/devices/0011223344556677/up')).toBeUndefined()
  })

  it('builds and parses gateway statuses', () => {
    expect(gatewayStatusTopic('lb', 'gw-1')).toBe('lb/gateways/gw-1/status')
    expect(parseGatewayStatusTopic('lb', 'lb/gateways/gw-1/status')).toBe('gw-1')
    expect(parseGatewayStatusTopic('lb', 'lb/gateways/gw-1/status/x')).toBeUndefined()
    expect(parseGatewayStatusTopic('lb', 'lb/farm/devices/x/up')).toBeUndefined()
  })
})
