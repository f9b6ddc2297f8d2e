// The tree folder a user's programs run in (/home/student): their own
// Local folder, or their test folder while a test that shows only its own
// folders runs for them (workspace.Mounts).
import { computed, type ComputedRef } from 'vue'
import { useAuthStore } from '@/stores/auth'
import { testFolder, useCourseStore } from '@/stores/course'

export function usePythonHome(): ComputedRef<string> {
  const auth = useAuthStore()
  const course = useCourseStore()
  return computed(() => {
    const t = auth.isStaff ? undefined : course.runningTest?.test
    return t?.restrict_workspace ? testFolder(t.slug, auth.user?.username ?? '') : auth.home
  })
}
