/* A minimal host application of quill's C API (C11): load a model, tokenize a prompt, stream a greedy
 * continuation through a callback, free everything. stdout gets the prompt and the generated text,
 * exactly as `quill run --temp 0` prints them.
 *
 *   quill_generate [MODEL.gguf] [PROMPT] [N_TOKENS]
 *
 * Without MODEL (or with "") the built-in synthetic model is used. The device follows $QUILL_DEVICE
 * (default: first GPU, else first CPU). Build against an installed quill:
 *   cc -std=c11 generate.c $(pkg-config --cflags --libs quill) -o quill_generate
 */
#include <quill.h>
#include <stdio.h>
#include <stdlib.h>

static int fail(const char* what, quill_status status) {
  fprintf(stderr, "error: %s: %s: %s\n", what, quill_status_string(status), quill_last_error());
  return 1;
}

/* The per-token callback: print the piece as it arrives; returning false would stop generation. */
static bool on_token(int32_t token, const char* piece, int32_t piece_len, void* user_data) {
  (void)token;
  int* count = (int*)user_data;
  fwrite(piece, 1, (size_t)piece_len, stdout);
  fflush(stdout);
  ++*count;
  return true;
}

int main(int argc, char** argv) {
  const char* path = argc > 1 && argv[1][0] ? argv[1] : NULL;
  const char* prompt = argc > 2 ? argv[2] : "Once upon a time";
  const int n_tokens = argc > 3 ? atoi(argv[3]) : 64;

  quill_model_params model_params = quill_model_default_params();
  quill_model* model = NULL;
  quill_status status = quill_model_load(path, &model_params, &model);
  if (status != QUILL_OK) return fail(path ? path : "synthetic model", status);

  /* Tokenize: ask for the size first (the -needed protocol), then fill. */
  const int32_t probe = quill_tokenize(model, prompt, -1, NULL, 0, true);
  if (probe == QUILL_INVALID) {
    quill_model_free(model);
    return fail("tokenize", QUILL_ERR_INVALID_ARGUMENT);
  }
  const int32_t needed = probe < 0 ? -probe : 0;
  int32_t* tokens = (int32_t*)malloc(sizeof(int32_t) * (size_t)(needed > 0 ? needed : 1));
  const int32_t n_prompt = needed > 0 ? quill_tokenize(model, prompt, -1, tokens, needed, true) : 0;

  quill_session* session = NULL;
  quill_sampler* sampler = NULL;
  quill_sampler_params sampler_params = quill_sampler_default_params();
  sampler_params.temp = 0.0f; /* greedy */
  int generated = 0;
  int rc = 0;
  if ((status = quill_session_create(model, NULL, &session)) != QUILL_OK) {
    rc = fail("session", status);
  } else if ((status = quill_sampler_create(&sampler_params, &sampler)) != QUILL_OK) {
    rc = fail("sampler", status);
  } else {
    fputs(prompt, stdout);
    fflush(stdout);
    status = quill_generate(session, sampler, tokens, n_prompt, n_tokens, on_token, &generated, NULL);
    fputs("\n", stdout);
    if (status == QUILL_ERR_CONTEXT_FULL) {
      fprintf(stderr, "warning: %s\n", quill_last_error());
    } else if (status != QUILL_OK) {
      rc = fail("generate", status);
    }
  }
  fprintf(stderr, "quill %s: %d tokens generated\n", quill_version(), generated);

  quill_sampler_free(sampler);
  quill_session_free(session);
  quill_model_free(model);
  free(tokens);
  return rc;
}
