"""ROS 2 data without ROS: message types, image conversion and bags for the offline tools.

- ``messages``: a rosbags typestore with grasp_ros's ``msg/`` definitions, and builders for
  Header, Image, VirtualTrajectory, PlannerStatus and ActionCommand objects.
- ``images``: sensor_msgs Image/CompressedImage to RGB arrays and back, as cv_bridge does it.
- ``bags``: atomic rosbag2 writing and checked reading.

The submodules are imported explicitly (``from grasp_ros.io import bags``) so that importing
the package does not load rosbags or OpenCV.
"""
