import { createRouter, createWebHistory } from 'vue-router'
import { useAuthStore } from './stores/auth'

declare module 'vue-router' {
  interface RouteMeta {
    /** Professors and admins only (the server checks again). */
    staff?: boolean
    /** Teaching staff: professors, admins and teaching assistants. */
    teaching?: boolean
  }
}

export const router = createRouter({
  history: createWebHistory(),
  routes: [
    { path: '/login', name: 'login', component: () => import('./views/LoginView.vue') },
    {
      path: '/',
      component: () => import('./views/AppShell.vue'),
      children: [
        { path: '', name: 'ide', component: () => import('./views/IdeView.vue') },
        { path: 'course/:kind(a|t|grades)?/:slug?', name: 'course', component: () => import('./views/CourseView.vue') },
        {
          path: 'grading/:slug?/:user?',
          name: 'grading',
          component: () => import('./views/GradingView.vue'),
          meta: { teaching: true },
        },
        { path: 'live', name: 'live', component: () => import('./views/LiveView.vue') },
        { path: 'live/:kind(help|follow)/:id', name: 'live-watch', component: () => import('./views/LiveWatchView.vue') },
        { path: 'admin/:tab(status|users|audit)?', name: 'admin', component: () => import('./views/AdminView.vue'), meta: { staff: true } },
      ],
    },
    { path: '/:rest(.*)*', redirect: '/' },
  ],
})

router.beforeEach(async (to) => {
  const auth = useAuthStore()
  if (!auth.checked) {
    try {
      await auth.fetchMe()
    } catch {
      // Server unreachable: the login screen says so when the user tries.
    }
  }
  if (to.name !== 'login' && !auth.user) return { name: 'login', query: to.fullPath === '/' ? {} : { next: to.fullPath } }
  if (to.name === 'login' && auth.user) return { name: 'ide' }
  if (to.meta.staff && !auth.isStaff) return { name: 'course' }
  if (to.meta.teaching && !auth.teaches) return { name: 'course' }
  return true
})
