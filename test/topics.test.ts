/** The app-connect topic classifier and the application mapping, as tables. */
import { describe, it, expect } from 'vitest'
import { classifyTopic } from '../src/multitech/topics.js'
import { ApplicationResolver } from '../src/model/applications.js'

const GW10 = '029998E06156CDD44523264B523115C1'
const GW11 = '029998e0-6156-cdd4-4523-264b523115c1'
const ID = GW11

describe('classifyTopic', () => {
  it.each([
    [`lorawan/8b-6c-f0-8e-ee-df-1b-b6/${GW10}/init`, { kind: 'gateway', event: 'init', family: '1.0', gatewayId: ID, appEui: '8b6cf08eeedf1bb6' }],
    [`lorawan/${GW11}/init`, { kind: 'gateway', event: 'init', family: '1.1', gatewayId: ID }],
    [`lorawan/${GW11}/connected`, { kind: 'gateway', event: 'connected', family: '1.1' }],
    [`lorawan/${GW11}/lora_res`, { kind: 'gateway', event: 'lora_res' }],
    ['lorawan/8b-6c-f0-8e-ee-df-1b-b6/00-80-00-ff-ff-00-00-03/up', { kind: 'device', event: 'up', family: '1.0', devEui: '008000ffff000003', appEui: '8b6cf08eeedf1bb6' }],
    [`lorawan/${GW11}/6c-4e-ef-66-f4-79-86-a6/00-11-00-11-00-11-00-11/up`, { kind: 'device', event: 'up', family: '1.1', devEui: '0011001100110011', gatewayId: ID }],
    [`lorawan/${GW10}/00-80-00-ff-ff-00-00-03/joined`, { kind: 'device', event: 'joined', family: '1.0', gatewayId: ID }],
    ['lorawan//00-80-00-ff-ff-00-00-03/joined', { kind: 'device', event: 'joined', family: '1.0', devEui: '008000ffff000003' }],
    ['lorawan/0080000000015834/up', { kind: 'device', event: 'up', devEui: '0080000000015834' }],
    // Same three levels, told apart by the middle segment: a GW-UUID (v1.1) or a DevEUI (lora-mqtt-bridge).
    [`lorawan/${GW11}/down`, { kind: 'command', event: 'down', target: 'gateway' }],
    ['lorawan/00-80-00-ff-ff-00-00-03/down', { kind: 'command', event: 'down', target: 'device' }],
    ['lorawan/8b-6c-f0-8e-ee-df-1b-b6/00-80-00-ff-ff-00-00-03/clear', { kind: 'command', event: 'clear' }],
    [`lorawan/${GW11}/api_req`, { kind: 'command', event: 'api_req' }],
    [`lorawan/${GW11}/reboot`, { kind: 'unknown' }],
    ['lorawan/not-an-eui/00-80-00-ff-ff-00-00-03/up', { kind: 'unknown' }],
    ['lorawan/a/b/c/d/e/up', { kind: 'unknown' }],
    ['other/topic', { kind: 'unknown' }],
  ])('%s', (topic, shape) => {
    expect(classifyTopic(topic)).toMatchObject(shape)
  })
})

describe('ApplicationResolver', () => {
  const apps = new ApplicationResolver([
    { name: 'farm', match: { appEui: ['16-ea-76-f6-ab-66-3d-80'], devEui: [], gateways: [], thingpark: ['tp-eu'] } },
    { name: 'city', match: { appEui: [], devEui: ['00:80:00:00:00:01:58:34'], gateways: ['029998E06156CDD44523264B523115C1'], thingpark: [] } },
  ])

  it.each([
    ['AppEUI', { devEui: '0000000000000001', appEui: '16EA76F6AB663D80' }, 'farm'],
    ['JoinEUI', { devEui: '0000000000000001', joinEui: '16-ea-76-f6-ab-66-3d-80' }, 'farm'],
    ['DevEUI beats AppEUI', { devEui: '0080000000015834', appEui: '16-ea-76-f6-ab-66-3d-80' }, 'city'],
    ['gateway in either spelling', { devEui: '0000000000000001', gateways: ['029998e0-6156-cdd4-4523-264b523115c1'] }, 'city'],
    ['ThingPark connection', { devEui: '0000000000000001', thingparkConnection: 'tp-eu' }, 'farm'],
    ['nothing', { devEui: '0000000000000001', appEui: '0000000000000009' }, 'default'],
  ])('%s', (_name, facts, app) => {
    expect(apps.resolve(facts)).toBe(app)
  })
})
