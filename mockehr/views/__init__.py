"""Pages for people beyond the auth pages: launcher, EHR frame, inspector, patient browser, sample app."""
