import { createApp } from 'vue'
import { createPinia } from 'pinia'
import 'element-plus/theme-chalk/dark/css-vars.css'
import './styles.css'
import App from './App.vue'
import { router } from './router'
import { setPasswordChangeHook, setUnauthorizedHook } from './api/http'
import { useAuthStore } from './stores/auth'

const app = createApp(App)
app.use(createPinia())
app.use(router)

// Any 401 from the API means the session ended: back to the login screen.
setUnauthorizedHook(() => {
  useAuthStore().expired()
  if (router.currentRoute.value.name !== 'login') {
    void router.push({ name: 'login', query: { next: router.currentRoute.value.fullPath } })
  }
})

// A 403 that says the handed-out password must be changed first: the
// signed-in layout shows only the change-password dialog until it is.
setPasswordChangeHook(() => useAuthStore().passwordChangeRequired())

app.mount('#app')
