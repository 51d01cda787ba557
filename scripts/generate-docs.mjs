// Regenerates the docs that come from code, so that they cannot drift from it:
// docs/configuration.md from the configuration schema, docs/errors.md from the error-code table.
import { writeFile } from 'node:fs/promises'
import { configurationReference } from '../dist/config/reference.js'
import { errorsReference } from '../dist/errors.js'
import { helpersReference } from '../dist/rules/helpers.js'
import { readFile } from 'node:fs/promises'

await writeFile(new URL('../docs/configuration.md', import.meta.url), configurationReference())
await writeFile(new URL('../docs/errors.md', import.meta.url), errorsReference())
const rulesDoc = new URL('../docs/rules.md', import.meta.url)
const text = await readFile(rulesDoc, 'utf8')
await writeFile(rulesDoc, text.replace(/<!-- helpers:start -->[\s\S]*<!-- helpers:end -->/, `<!-- helpers:start -->\n${helpersReference()}\n<!-- helpers:end -->`))
console.log('wrote docs/configuration.md, docs/errors.md and the helper table of docs/rules.md')
