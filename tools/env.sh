# The shell set-up for using the CLI, the nodes and the ros2 tools by hand, after `make setup`:
#
#   source tools/env.sh        (from any folder; bash or zsh)
#
# Activates .venv, sources the colcon workspace (our messages and the nodes' executables), and sets
# what the package expects without a ROS install: loopback-only discovery, Fast DDS with the
# shipped profile (the default 512 KiB shared-memory segment silently drops large best-effort
# images). Where `make test` ran `../shared/ros2-tools/install.sh`, the ros2 CLI comes too.
# Variables you set before sourcing (e.g. ROS_DOMAIN_ID) are kept.
_snn_root=$(cd "$(dirname "${BASH_SOURCE[0]:-${(%):-%x}}")/.." && pwd)
if [ ! -f "$_snn_root/install/setup.bash" ] && [ ! -f "$_snn_root/install/setup.sh" ]; then
  echo "tools/env.sh: $_snn_root/install is missing: run 'make setup' in $_snn_root first" >&2
else
  . "$_snn_root/.venv/bin/activate"
  if [ -n "${ZSH_VERSION:-}" ]; then . "$_snn_root/install/setup.zsh"; else . "$_snn_root/install/setup.bash"; fi
  [ -f "$_snn_root/build/ros2-tools/install/setup.bash" ] && [ -z "${ZSH_VERSION:-}" ] \
    && . "$_snn_root/build/ros2-tools/install/setup.bash"
  # the sources first, as `make test` has them: the install space mirrors the modules that existed
  # at the last `make setup`, so a module added since (a pull, a branch) would not import from it
  export PYTHONPATH="$_snn_root${PYTHONPATH:+:$PYTHONPATH}"
  export ROS_AUTOMATIC_DISCOVERY_RANGE=${ROS_AUTOMATIC_DISCOVERY_RANGE:-LOCALHOST}
  export RMW_IMPLEMENTATION=${RMW_IMPLEMENTATION:-rmw_fastrtps_cpp}
  export FASTDDS_DEFAULT_PROFILES_FILE=${FASTDDS_DEFAULT_PROFILES_FILE:-$_snn_root/config/fastdds_localhost.xml}
  echo "snn_perception environment ready (ROS_DOMAIN_ID=${ROS_DOMAIN_ID:-0}): snn-perception --help"
fi
unset _snn_root
