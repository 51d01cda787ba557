/**
 * The `lorabridge` executable (PRODUCT.md §5). Each command is a thin shell over a module that
 * the tests also use directly; this file owns argument parsing, exit codes and process signals.
 */
import { readFileSync } from 'node:fs'
import { Command, InvalidArgumentError, Option } from 'commander'
import { checkConfig, loadConfig } from '../config/load.js'
import { ConfigError } from '../config/issues.js'
import type { Config } from '../config/schema.js'
import type { ConduitCliOptions } from '../simulate/conduit-cli.js'
import type { ThingParkCliOptions } from '../simulate/thingpark-cli.js'
import type { CodecTestOptions } from './codecs.js'
// Commands load their modules on demand, so `config check` or `users list` does not pay for
// loading the broker, Fastify and the certificate library.
const startCommand = async (c: Config, o: { logFormat?: 'pretty' | 'json' }): Promise<void> => (await import('./start.js')).startCommand(c, o)
const users$ = async () => import('./users.js')
const certs$ = async () => import('./certs.js')
const rules$ = async () => import('./rules.js')
const bans$ = async () => import('./bans.js')

/**
 * The configuration, or exit 1 with its problems. `secrets: false` for commands that never use
 * them; `files: true` checks the certificate and key files it names; `start` says each problem on
 * one line with its code, as it does for every start-up failure.
 */
function configFrom (program: Command, opts: { secrets?: boolean, files?: boolean, startup?: boolean } = {}): Config {
  try {
    return loadConfig({ file: program.opts<{ config?: string }>().config, secrets: opts.secrets ?? true, files: opts.files ?? false }).config
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(opts.startup === true
        ? err.issues.map(i => `lorabridge: ${i.code}: ${err.file ?? 'configuration'}: ${i.path}: ${i.message}\n`).join('')
        : `${err.message}\n`)
      process.exit(1)
    }
    throw err
  }
}

/** The installed package's version (package.json sits two levels above dist/cli/). */
function packageVersion (): string {
  return (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version
}

function logFormat (value: string): 'pretty' | 'json' {
  if (value === 'pretty' || value === 'json') return value
  throw new InvalidArgumentError('must be pretty or json')
}

function list (value: string): string[] {
  return value.split(',').map(s => s.trim()).filter(s => s !== '')
}

function role (value: string): 'gateway' | 'consumer' | 'admin' {
  if (value === 'gateway' || value === 'consumer' || value === 'admin') return value
  throw new InvalidArgumentError('must be gateway, consumer or admin')
}

const program = new Command()
  .name('lorabridge')
  .description('LoRaWAN application bridge: Conduit app-connect and ThingPark onto normalized MQTT topics')
  .option('-c, --config <file>', 'configuration file (default ./lorabridge.yaml when present)')
  .showHelpAfterError()
  // Not commander's .version(): a program option is also parsed after the subcommand, where it
  // would take `simulate conduit --version 1.1` (the app-connect API version) for itself.
  .addHelpText('after', () => `\nlorabridge --version (or -V) prints the version (${packageVersion()}).`)

program.command('start')
  .description('run the daemon')
  .option('--log-format <format>', 'pretty | json (default: log.format, where auto is pretty on a terminal and json otherwise)', logFormat)
  .action(async (opts: { logFormat?: 'pretty' | 'json' }) => { await startCommand(configFrom(program, { files: true, startup: true }), opts) })

const config = program.command('config').description('configuration tools')
config.command('check')
  .description('validate the configuration; print each problem with its path; exit 1 on error')
  .action(() => {
    const { config: ok, file, issues } = checkConfig({ file: program.opts<{ config?: string }>().config, files: true })
    if (ok === undefined) {
      process.stderr.write(`${file ?? 'configuration'}: ${issues.length} problem${issues.length === 1 ? '' : 's'}\n`)
      for (const i of issues) process.stderr.write(`  ${i.path}: ${i.message}\n`)
      process.exitCode = 1
      return
    }
    process.stdout.write(`${file ?? 'built-in defaults'}: ok\n`)
  })

const certs = program.command('certs').description('development CA and certificates')
certs.command('init')
  .description('create ca.crt, ca.key, server.crt, server.key (SAN localhost, 127.0.0.1, ::1 and --host names)')
  .option('--dir <dir>', 'output directory (default: dataDir)')
  .option('--host <name>', 'extra server name or address (repeatable)', (v: string, acc: string[]) => [...acc, v], [] as string[])
  .action(async (opts: { dir?: string, host: string[] }) => { await (await certs$()).certsInit(configFrom(program, { secrets: false }), opts) })
certs.command('client')
  .description('create NAME.crt/NAME.key signed by the CA, CN=NAME, and record its SHA-256 for NAME in the users file')
  .argument('<name>')
  .option('--dir <dir>', 'directory holding ca.crt/ca.key and receiving the files (default: dataDir)')
  .option('--days <n>', 'validity in days', (v: string) => Number(v), 825)
  .option('--force', 'overwrite existing files')
  .action(async (name: string, opts: { dir?: string, days: number, force?: boolean }) => { await (await certs$()).certsClient(configFrom(program, { secrets: false }), name, opts) })

const rules = program.command('rules').description('rule files: compile and dry-run')
rules.command('check')
  .description('compile every rule file; print errors with file, line and column; exit 1 on error')
  .argument('[dir]', 'rules directory (default: rules.dir)')
  .action(async (dir: string | undefined) => { await (await rules$()).rulesCheck(configFrom(program, { secrets: false }), dir) })
rules.command('test')
  .description('dry-run the rules on one normalized event; print decoded output, matched rules, downlinks and publications as JSON')
  .argument('<path>', 'a rule file or a directory of them')
  .requiredOption('--event <file>', 'a normalized event (JSON)')
  .option('--on <kind>', 'the event kind: up, join, status, location, down/queued, down/sent, down/failed', 'up')
  .action(async (path: string, opts: { event: string, on: string }) => { await (await rules$()).rulesTest(configFrom(program, { secrets: false }), path, opts) })

const codecs = program.command('codecs').description('JavaScript payload codecs (TS013, TTN v2, ChirpStack v3) in the daemon\'s sandbox')
codecs.command('test')
  .description('run a codec file: decode one payload, encode one object, or check a file of examples; JSON on stdout, exit 1 on codec errors or failed examples')
  .argument('<file>', 'the codec (.js)')
  .option('--fport <n>', 'FPort of the payload (required with --hex; overrides the codec\'s with --encode)')
  .option('--hex <hex>', 'decode this uplink payload (decodeUplink)')
  .option('--recv-time <iso>', 'the uplink\'s receive time given to decodeUplink (default: now)')
  .option('--encode <json>', 'encode this object (encodeDownlink)')
  .option('--examples <file>', 'run the examples of a YAML file (TTN device repository format) and print a pass/fail table')
  .action(async (file: string, opts: CodecTestOptions) => { await (await import('./codecs.js')).codecsTest(configFrom(program, { secrets: false }), file, opts) })

const users = program.command('users').description('manage the users file')
users.command('add')
  .description('add or replace a user (only a salted hash of the password is stored)')
  .argument('<name>')
  .requiredOption('--role <role>', 'gateway | consumer | admin', role)
  .option('--password <password>', 'password, at least 8 characters (prefer --password-stdin: a command line is visible to other users and kept in shell history)')
  .option('--password-stdin', 'on a terminal, ask for the password twice without echo; otherwise read it from standard input (printf \'%s\\n\' "$PW" | …)')
  .option('--apps <list>', 'applications a consumer may read (comma-separated, * for all)', list, [] as string[])
  .option('--downlink', 'allow publishing down/clear commands on those applications')
  .option('--gateway <uuid>', 'the Conduit GW-UUID a gateway user is bound to (required for --role gateway unless --any-gateway)')
  .option('--any-gateway', 'a gateway user bound to no GW-UUID: it may read every Conduit\'s lorawan/# traffic and publish on every Conduit\'s lorawan/… topics (downlinks, api_req and lora_req commands, init and close); only for a trusted bridge')
  .option('--cert <file>', 'record this client certificate (PEM) for the user: once any is recorded, only recorded ones authenticate it (repeatable)', (v: string, acc: string[]) => [...acc, v], [] as string[])
  .option('--fingerprint <sha256>', 'record a client certificate by its SHA-256 fingerprint (repeatable)', (v: string, acc: string[]) => [...acc, v], [] as string[])
  .action(async (name: string, opts: { role: 'gateway' | 'consumer' | 'admin', password?: string, passwordStdin?: boolean, apps: string[], downlink?: boolean, gateway?: string, anyGateway?: boolean, cert: string[], fingerprint: string[] }) => {
    await (await users$()).usersAdd(configFrom(program, { secrets: false }), name, opts)
  })
users.command('list')
  .description('list users')
  .option('--json', 'print JSON')
  .action(async (opts: { json?: boolean }) => { await (await users$()).usersList(configFrom(program, { secrets: false }), opts) })
users.command('remove')
  .description('remove a user and the certificates recorded for the name')
  .argument('<name>')
  .action(async (name: string) => { await (await users$()).usersRemove(configFrom(program, { secrets: false }), name) })

const ban = program.command('ban').description('the ban list: addresses, networks, client ids and users refused at once (a running daemon applies it within a second)')
ban.command('add')
  .description('ban one address or CIDR network, client id or user name; its open connections are closed')
  .option('--address <address>', 'an address or a CIDR network (10.0.0.7, 10.0.0.0/8, 2001:db8::/32)')
  .option('--client-id <id>', 'an MQTT client id')
  .option('--user <name>', 'a user name (password or certificate)')
  .option('--for <duration>', 'lift it automatically after this long (30m, 12h, 7d)')
  .option('--reason <text>', 'why (kept in the list and logged)')
  .action(async (opts: { address?: string, clientId?: string, user?: string, for?: string, reason?: string }) => { await (await bans$()).banAdd(configFrom(program, { secrets: false }), opts) })
ban.command('list')
  .description('list bans')
  .option('--json', 'print JSON')
  .action(async (opts: { json?: boolean }) => { await (await bans$()).banList(configFrom(program, { secrets: false }), opts) })
ban.command('remove')
  .description('lift the ban on an address, network, client id or user name')
  .argument('<value>')
  .action(async (value: string) => { await (await bans$()).banRemove(configFrom(program, { secrets: false }), value) })

const simulate = program.command('simulate').description('simulators for tests and benchmarks')
simulate.command('conduit')
  .description('simulate a MultiTech Conduit running app-connect (MQTT or HTTP): print its devices, each uplink sent and each downlink received as JSON lines. Each run is a fresh session: a random DevAddr and first frame counter per device (DevEUIs stay 00-80-00-ff-00-00-00-01, …)')
  .requiredOption('--url <url>', 'mqtt://, mqtts://, wss://host:port/path, http:// or https://host:port[/prefix]')
  .option('--api-version <v>', 'app-connect API version: 1.0 | 1.1 | 1.1.1', '1.1.1')
  .option('--hex', 'encodeHex: hex payloads instead of base64')
  .option('--devices <n>', 'number of simulated devices', Number, 1)
  .option('--rate <r>', 'uplinks per second', Number, 1)
  .option('--count <c>', 'uplinks to send (default: until SIGINT)', Number)
  .option('--fport <p>', 'uplink FPort (default 1)', Number)
  .addOption(new Option('--port <p>', 'deprecated: --fport').argParser(Number).hideHelp())
  .option('--payload <template>', 'every uplink\'s payload: hex digits with counters, {n} = the uplink\'s number in this run (per device, 1 byte), {fcnt} = its frame counter (2 bytes); {n:W}/{fcnt:W} on W = 1-4 bytes, big-endian', '01{n}')
  .option('--dev-addr <hex>', 'DevAddr of the first device, device i gets this + i (default: random per run)')
  .option('--fcnt <n>', 'first frame counter of every device (default: random per run)', Number)
  .option('--duration <seconds>', 'end the run after this many seconds', Number)
  .option('--keep-running', 'after the last --count uplink, keep printing downlinks until Ctrl-C (SIGINT/SIGTERM) or --duration')
  .option('--gw-uuid <uuid>', 'GW-UUID (default random; a gateway user bound to a GW-UUID needs that one)')
  .option('--app-eui <eui>', 'app EUI of the connection (v1.0; v1.1 always uses ff-ff-ff-ff-ff-ff-ff-ff)')
  .option('--username <user>', 'MQTT user name')
  .option('--password <password>', 'MQTT password (prefer --password-stdin)')
  .option('--password-stdin', 'read the password from standard input')
  .option('--ca <file>', 'server CA certificate (PEM)')
  .option('--cert <file>', 'client certificate (PEM)')
  .option('--key <file>', 'client private key (PEM)')
  .option('--clean', 'clean session (app-connect default: persistent)')
  .option('--join', 'publish a joined event for each device first')
  .option('--linger <ms>', 'wait this long for downlinks after the last --count uplink', Number, 1000)
  .action(async (opts: ConduitCliOptions) => { await (await import('../simulate/conduit-cli.js')).simulateConduitCommand(opts) })
simulate.command('thingpark')
  .description('simulate the ThingPark LRC: post signed tunnel reports to an AS URL; with --lrc-port also serve the downlink endpoint (JSON lines). Each run is a fresh session: a random DevAddr and first FCntUp per device')
  .requiredOption('--url <url>', 'AS URL configured in ThingPark (http:// or https://)')
  .requiredOption('--as-id <id>', 'AS_ID, e.g. TWA_100000001.1.AS')
  .option('--as-key <key>', 'AS key (32 hex; prefer --as-key-env)')
  .option('--as-key-env <var>', 'environment variable holding the AS key')
  .option('--dev-eui <eui>', 'first DevEUI; device i is this + i', '0018B20000000001')
  .option('--devices <n>', 'number of simulated devices', Number, 1)
  .option('--count <c>', 'reports to post', Number, 1)
  .option('--rate <r>', 'reports per second', Number, 1)
  .option('--concurrency <n>', 'posts in flight at most', Number, 64)
  .option('--content-type <t>', 'json | json-untyped | xml', 'json')
  .option('--report <kind>', 'uplink | join | notification | location', 'uplink')
  .option('--fport <p>', 'uplink FPort', Number, 1)
  .option('--payload <template>', 'every uplink\'s payload: hex digits with counters, {n} = the uplink\'s number in this run (per device, 1 byte), {fcnt} = its FCntUp (2 bytes); {n:W}/{fcnt:W} on W = 1-4 bytes, big-endian', '01{n:2}')
  .option('--dev-addr <hex>', 'DevAddr of the first device, device i gets this + i (default: random per run)')
  .option('--fcnt <n>', 'first FCntUp of every device (default: random per run)', Number)
  .option('--customer-id <id>', 'CustomerID', '100000001')
  .option('--lrc-port <p>', 'also serve the LRC downlink endpoint on this port (0 = any) until SIGINT/SIGTERM', Number)
  .option('--lrc-host <h>', 'address for the LRC endpoint', '127.0.0.1')
  .option('--duration <seconds>', 'end the run after this many seconds (with --lrc-port or --keep-running too)', Number)
  .option('--keep-running', 'keep running after the last report until Ctrl-C (SIGINT/SIGTERM) or --duration, as --lrc-port does')
  .option('--ca <file>', 'CA certificate of an https AS (PEM)')
  .option('--no-keep-alive', 'a new connection per post with Connection: close, as the real LRC does')
  .action(async (opts: ThingParkCliOptions) => { await (await import('../simulate/thingpark-cli.js')).simulateThingParkCommand(opts) })

// `simulate conduit --version 1.1` from before --api-version: say so instead of printing a version.
const legacySimulateFlag = process.argv.indexOf('simulate') >= 0 && process.argv.includes('conduit')
  ? (await import('../simulate/conduit-cli.js')).legacyVersionFlag(process.argv)
  : undefined
// `lorabridge --version` / `-V`, checked before commander parses (see the note on the program).
const first = process.argv[2]
if (legacySimulateFlag !== undefined) {
  process.stderr.write(`${legacySimulateFlag}\n`)
  process.exit(2)
} else if (first === '--version' || first === '-V') {
  process.stdout.write(`${packageVersion()}\n`)
} else {
  program.parseAsync(process.argv).catch((err: unknown) => {
    process.stderr.write(`lorabridge: ${err instanceof Error ? err.message : String(err)}\n`)
    // A command may name its status (2: the arguments were wrong, as for commander's own errors).
    const code = (err as { exitCode?: unknown } | null)?.exitCode
    process.exit(typeof code === 'number' ? code : 1)
  })
}
