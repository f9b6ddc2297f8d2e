// Logging out from any screen: unsaved editor text is saved first, the
// console's socket is closed so it stops reconnecting, and the stores of the
// user who leaves are emptied before the next one signs in.
import { useRouter } from 'vue-router'
import { ElMessage } from '@/ui'
import { errorMessage } from '@/api/http'
import { useAuthStore } from '@/stores/auth'
import { useConsoleStore } from '@/stores/console'
import { useCourseStore } from '@/stores/course'
import { useFilesStore } from '@/stores/files'
import { useGradingStore } from '@/stores/grading'
import { useAdminStore } from '@/stores/admin'

export function useLogout() {
  const auth = useAuthStore()
  const con = useConsoleStore()
  const files = useFilesStore()
  const router = useRouter()
  return async function logout() {
    try {
      await files.saveAll()
      await auth.logout()
    } catch (e) {
      ElMessage.error(errorMessage(e))
    }
    con.disconnect()
    files.reset()
    useCourseStore().$reset()
    useGradingStore().$reset()
    const admin = useAdminStore()
    admin.stopAutoRefresh()
    admin.$reset()
    await router.replace({ name: 'login' })
  }
}
