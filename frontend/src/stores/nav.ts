// The nav store carries a request from another screen to the IDE screen:
// show this folder in the tree, open this file, run it. The IDE acts on it
// when it is shown, once its file tree is loaded.
import { defineStore } from 'pinia'

export interface IdeIntent {
  path: string
  /** Open the file in an editor tab. */
  open?: boolean
  /** Open it without editing, even where the user could write. */
  readOnly?: boolean
  /** Run it in the console. */
  run?: boolean
}

export const useNavStore = defineStore('nav', {
  state: () => ({
    intent: null as IdeIntent | null,
    /** The last address of each screen, so the rail returns to what was open there. */
    last: {} as Record<string, string>,
  }),
  actions: {
    showInIde(intent: IdeIntent) {
      this.intent = intent
    },
    take(): IdeIntent | null {
      const i = this.intent
      this.intent = null
      return i
    },
  },
})
