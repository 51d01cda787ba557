// Regenerates the docs that come from code, so that they cannot drift from it:
// docs/configuration.md from the configuration schema, docs/errors.md from the error-code table,
// docs/schemas/*.schema.json from the event schemas (src/model/event-schemas.ts).
import { mkdir, readdir, rm, writeFile } from 'node:fs/promises'
import { configurationReference } from '../dist/config/reference.js'
import { errorsReference } from '../dist/errors.js'
import { helpersReference } from '../dist/rules/helpers.js'
import { schemaFiles } from '../dist/model/event-schemas.js'
import { readFile } from 'node:fs/promises'

await writeFile(new URL('../docs/configuration.md', import.meta.url), configurationReference())
await writeFile(new URL('../docs/errors.md', import.meta.url), errorsReference())
const rulesDoc = new URL('../docs/rules.md', import.meta.url)
const text = await readFile(rulesDoc, 'utf8')
await writeFile(rulesDoc, text.replace(/<!-- helpers:start -->[\s\S]*<!-- helpers:end -->/, `<!-- helpers:start -->\n${helpersReference()}\n<!-- helpers:end -->`))
const schemaDir = new URL('../docs/schemas/', import.meta.url)
await mkdir(schemaDir, { recursive: true })
const files = schemaFiles()
// A schema that was renamed or removed must not linger as a file.
for (const name of await readdir(schemaDir)) {
  if (name.endsWith('.schema.json') && !files.some(f => f.file === name)) await rm(new URL(name, schemaDir))
}
for (const { file, text: json } of files) await writeFile(new URL(file, schemaDir), json)
console.log(`wrote docs/configuration.md, docs/errors.md, the helper table of docs/rules.md and ${files.length} files in docs/schemas/`)
