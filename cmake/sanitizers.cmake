# Sanitizer builds: -DQUILL_SANITIZE=address,undefined (any comma list the compiler accepts) instruments every
# target of the tree — engine, CLI, tests — at -O1 with frame pointers, and makes UBSan findings fatal so CTest
# sees them as failures. Used by .ci/sanitize.sh (build-asan); see docs/RELIABILITY.md for the suppressions.
set(QUILL_SANITIZE "" CACHE STRING "Sanitizers for every target, e.g. address,undefined (empty: none)")
if(QUILL_SANITIZE)
  set(QUILL_SANITIZE_FLAGS -fsanitize=${QUILL_SANITIZE} -fno-omit-frame-pointer -fno-sanitize-recover=all)
  if(QUILL_SANITIZE MATCHES "undefined")
    # vptr checks need RTTI across the OpenCL ICD boundary (none there); alignment checks are exact already.
    list(APPEND QUILL_SANITIZE_FLAGS -fno-sanitize=vptr)
  endif()
  add_compile_options(${QUILL_SANITIZE_FLAGS} -O1 -g1)
  add_link_options(-fsanitize=${QUILL_SANITIZE})
  message(STATUS "quill: sanitizers ${QUILL_SANITIZE} (-O1)")
endif()
