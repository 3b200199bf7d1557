"""ROS 2 data without ROS: message types, image conversion and bags for the offline tools.

- ``messages``: a rosbags typestore with grasp_ros's ``msg/`` definitions, and builders for
  Header, Image, VirtualTrajectory, PlannerStatus and ActionCommand objects.
- ``images``: sensor_msgs Image/CompressedImage to RGB arrays and back, as cv_bridge does it.
- ``bags``: atomic rosbag2 writing with offered QoS, checked reading, raw (verbatim) copies.
- ``bag_source``: one reader for rosbag2, ROS 1 and cut-off MCAP bags (``open_bag``).
- ``sim_topics``: the simulator's side of the topic contract (camera, goal, pose, task).

The submodules are imported explicitly (``from grasp_ros.io import bags``) so that importing
the package does not load rosbags or OpenCV.
"""
