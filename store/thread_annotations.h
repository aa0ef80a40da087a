// Clang thread-safety annotations (-Wthread-safety). They state which lock
// guards which data and which locks a function needs, takes or gives back,
// so that a compile checks the locking rules instead of a comment stating
// them. Other compilers ignore them.
#pragma once

#if defined(__clang__)
#define REMAPFS_TSA(x) __attribute__((x))
#else
#define REMAPFS_TSA(x)
#endif

// A class whose objects are locks; the string names the kind in warnings.
#define CAPABILITY(kind) REMAPFS_TSA(capability(kind))
// A class whose objects hold a lock from construction to destruction.
#define SCOPED_CAPABILITY REMAPFS_TSA(scoped_lockable)

// Data that may be touched only with the lock held (shared for reads).
#define GUARDED_BY(lock) REMAPFS_TSA(guarded_by(lock))
// Data behind a pointer that may be touched only with the lock held.
#define PT_GUARDED_BY(lock) REMAPFS_TSA(pt_guarded_by(lock))

// Lock order: this lock is taken only after (before) the named ones.
// Checked with -Wthread-safety-beta.
#define ACQUIRED_AFTER(...) REMAPFS_TSA(acquired_after(__VA_ARGS__))
#define ACQUIRED_BEFORE(...) REMAPFS_TSA(acquired_before(__VA_ARGS__))

// The caller must hold the lock(s), exclusively or at least shared.
#define REQUIRES(...) REMAPFS_TSA(requires_capability(__VA_ARGS__))
#define REQUIRES_SHARED(...) REMAPFS_TSA(requires_shared_capability(__VA_ARGS__))
// The caller must not hold the lock(s): the function takes them itself.
#define EXCLUDES(...) REMAPFS_TSA(locks_excluded(__VA_ARGS__))

// The function takes the lock(s) and returns with them held.
#define ACQUIRE(...) REMAPFS_TSA(acquire_capability(__VA_ARGS__))
#define ACQUIRE_SHARED(...) REMAPFS_TSA(acquire_shared_capability(__VA_ARGS__))
// The function gives back lock(s) the caller held.
#define RELEASE(...) REMAPFS_TSA(release_capability(__VA_ARGS__))
#define RELEASE_SHARED(...) REMAPFS_TSA(release_shared_capability(__VA_ARGS__))

// Turns the analysis off for one function whose locking it cannot follow;
// say why wherever it is used.
#define NO_THREAD_SAFETY_ANALYSIS REMAPFS_TSA(no_thread_safety_analysis)
