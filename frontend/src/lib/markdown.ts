// Markdown from professors (descriptions, feedback) rendered for display.
// markdown-it with html: false escapes every raw HTML tag, and its link check
// refuses javascript:, vbscript:, file: and data: URLs (except images), so the
// output is safe to insert as HTML: nothing a description says can run script
// in a student's session.
import MarkdownIt from 'markdown-it'

const md = new MarkdownIt({ html: false, linkify: true, typographer: false })
// Only a written-out address (https://…, mailto:…) becomes a link: with
// fuzzy links "main.py" and "data.csv" would turn into web sites (.py is
// Paraguay's domain), and a student would follow them out of the IDE.
md.linkify.set({ fuzzyLink: false, fuzzyEmail: false })

const renderToken: NonNullable<typeof md.renderer.rules.link_open> = (tokens, idx, options, _env, self) =>
  self.renderToken(tokens, idx, options)
const linkOpen = md.renderer.rules.link_open ?? renderToken

// A link leaves the IDE in a new tab that gets no handle on this one.
md.renderer.rules.link_open = (tokens, idx, options, env, self) => {
  const t = tokens[idx]
  if (t) {
    t.attrSet('target', '_blank')
    t.attrSet('rel', 'noopener noreferrer')
  }
  return linkOpen(tokens, idx, options, env, self)
}

export function renderMarkdown(src: string): string {
  return md.render(src ?? '')
}
