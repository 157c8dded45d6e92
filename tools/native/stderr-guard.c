/*
 * stderr_guard.node: mutes the process's file descriptor 2 while native TensorFlow starts.
 *
 * TensorFlow 2.21 writes its start-up notices (absl's pre-initialisation warning, the oneDNN notice) straight to
 * fd 2 at its first op, whatever TF_CPP_MIN_LOG_LEVEL says. lib/backend.ts calls mute() before it loads tfjs-node and
 * runs a first op, and unmute() right after; errors thrown meanwhile reach JavaScript as exceptions, not stderr.
 * Built by tools/native/setup-tensorflow.sh (N-API, so it serves every Node version the addon does).
 */
#include <fcntl.h>
#include <node_api.h>
#include <stdio.h>
#include <unistd.h>

static int saved_fd = -1;

static napi_value mute(napi_env env, napi_callback_info info) {
  (void)env;
  (void)info;
  if (saved_fd < 0) {
    fflush(stderr);
    saved_fd = dup(2);
    int null_fd = open("/dev/null", O_WRONLY);
    if (saved_fd >= 0 && null_fd >= 0) dup2(null_fd, 2);
    if (null_fd >= 0) close(null_fd);
  }
  return NULL;
}

static napi_value unmute(napi_env env, napi_callback_info info) {
  (void)env;
  (void)info;
  if (saved_fd >= 0) {
    fflush(stderr);
    dup2(saved_fd, 2);
    close(saved_fd);
    saved_fd = -1;
  }
  return NULL;
}

NAPI_MODULE_INIT() {
  napi_value fn;
  napi_create_function(env, "mute", NAPI_AUTO_LENGTH, mute, NULL, &fn);
  napi_set_named_property(env, exports, "mute", fn);
  napi_create_function(env, "unmute", NAPI_AUTO_LENGTH, unmute, NULL, &fn);
  napi_set_named_property(env, exports, "unmute", fn);
  return exports;
}
