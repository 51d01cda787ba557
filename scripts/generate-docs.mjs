// Regenerates the docs that come from code, so that they cannot drift from it:
// docs/configuration.md from the configuration schema, docs/errors.md from the error-code table.
import { writeFile } from 'node:fs/promises'
import { configurationReference } from '../dist/config/reference.js'
import { errorsReference } from '../dist/errors.js'

await writeFile(new URL('../docs/configuration.md', import.meta.url), configurationReference())
await writeFile(new URL('../docs/errors.md', import.meta.url), errorsReference())
console.log('wrote docs/configuration.md and docs/errors.md')
