/**
 * The full YAML parser, behind a module of ours so a dynamic import of it works the same from
 * source and from the bundle (where the `yaml` package is CommonJS, and a dynamic import of it
 * would hand back `{ default }` instead of its named exports).
 *
 * @module
 */
export { parse as parseFullYaml } from "yaml";
