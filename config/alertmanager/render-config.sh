#!/bin/sh
# Writes Alertmanager's configuration to $1: the routes of routes.yml beside this script, and a
# webhook receiver for each URL the environment gives:
#   ALERT_PAGE_WEBHOOK_URL       critical alerts (the on-call's pager)
#   ALERT_NOTIFY_WEBHOOK_URL     warnings (the team's channel)
#   ALERT_HEARTBEAT_WEBHOOK_URL  the Watchdog, every minute (a dead man's switch)
# A receiver without a URL sends nothing: its alerts show in Alertmanager's UI only, as this says
# at start. The result is checked with amtool where it is installed (the image has it).
set -eu

out=${1:?usage: render-config.sh <output file>}
here=$(dirname "$0")

refuse() {
  echo "render-config.sh: $1" >&2
  exit 1
}

# printed into YAML as it is: quotes, backslashes and spaces would break it, or end the URL early
check_url() {
  case "$2" in
    '') return 0 ;;
    *'"'* | *'\'* | *' '*) refuse "$1 holds a quote, a backslash or a space: give the URL percent-encoded" ;;
    http://?* | https://?*) return 0 ;;
    *) refuse "$1 is not an http:// or https:// URL: $2" ;;
  esac
}

receiver() {
  echo "  - name: $1"
  if [ -n "$3" ]; then
    printf '    webhook_configs:\n      - url: "%s"\n        send_resolved: %s\n' "$3" "$4"
  else
    echo "render-config.sh: $2 is not set: the $1 receiver sends nothing (its alerts show in Alertmanager's UI only)" >&2
  fi
}

page=${ALERT_PAGE_WEBHOOK_URL:-}
notify=${ALERT_NOTIFY_WEBHOOK_URL:-}
heartbeat=${ALERT_HEARTBEAT_WEBHOOK_URL:-}
check_url ALERT_PAGE_WEBHOOK_URL "$page"
check_url ALERT_NOTIFY_WEBHOOK_URL "$notify"
check_url ALERT_HEARTBEAT_WEBHOOK_URL "$heartbeat"

{
  cat "$here/routes.yml"
  echo
  echo "receivers:"
  receiver page ALERT_PAGE_WEBHOOK_URL "$page" true
  receiver notify ALERT_NOTIFY_WEBHOOK_URL "$notify" true
  # a heartbeat has nothing to resolve
  receiver heartbeat ALERT_HEARTBEAT_WEBHOOK_URL "$heartbeat" false
} > "$out"

if command -v amtool > /dev/null 2>&1; then
  amtool check-config "$out" > /dev/null || refuse "the configuration written to $out does not pass amtool check-config (above)"
fi
