#!/usr/bin/env bash
# Build this package with its own CMakeLists.txt against the ROS 2 Jazzy wheels in VENV.
#
#   bash test/ros/jazzy/build.sh VENV OUT      # from the checkout's root; `make test` runs it
#
# The install goes to OUT/install (messages, type support, the node executables, launch/ and
# config/ in share/), beside tf2_msgs' TFMessage (PyPI has no tf2_msgs wheel; see tf2_msgs/). CMake is run on OUT/src, a tree of links to the package's files, not on the
# checkout itself: the venv lies inside the checkout, and CMake refuses to export a target
# whose include folders (numpy's, from the venv) lie in the source tree.
set -euo pipefail
venv=$(cd "$1" && pwd)
mkdir -p "$2"
out=$(cd "$2" && pwd)
root=$(pwd)

rm -rf "$out/src" "$out/install"
mkdir -p "$out/src"
for path in CMakeLists.txt package.xml msg action grasp_ros scripts launch config; do
  cp -rs "$root/$path" "$out/src/"
done

export AMENT_PREFIX_PATH="$venv" CMAKE_PREFIX_PATH="$venv" PATH="$venv/bin:$PATH"
: > "$out/cmake.log"
# tf2_msgs (sim_node's /tf) has no wheel on PyPI: its one message is built here (tf2_msgs/).
for pkg in "$root/test/ros/jazzy/tf2_msgs:tf2_msgs" "$out/src:grasp_ros"; do
  src=${pkg%%:*} name=${pkg##*:}
  cmake -S "$src" -B "$out/build/$name" -DCMAKE_INSTALL_PREFIX="$out/install" \
    -DBUILD_TESTING=OFF -DPython3_EXECUTABLE="$venv/bin/python" >> "$out/cmake.log"
  cmake --build "$out/build/$name" -j 2 >> "$out/cmake.log"
  cmake --install "$out/build/$name" >> "$out/cmake.log"
done
echo "built tf2_msgs and grasp_ros into $out/install (log: $out/cmake.log)"
