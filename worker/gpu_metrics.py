"""GPU memory as a Prometheus gauge, read from TensorFlow at each scrape (no series on a CPU-only worker)."""

from prometheus_client.core import GaugeMetricFamily


class GpuMemoryCollector:
    """`styleforge_gpu_memory_bytes{device,kind}`: TensorFlow's current and peak allocation per GPU."""

    def collect(self):
        import tensorflow as tf

        family = GaugeMetricFamily(
            "styleforge_gpu_memory_bytes",
            "Bytes TensorFlow holds on each GPU, now and at its peak.",
            labels=["device", "kind"],
        )
        for index, _ in enumerate(tf.config.list_physical_devices("GPU")):
            info = tf.config.experimental.get_memory_info(f"GPU:{index}")
            family.add_metric([str(index), "current"], info["current"])
            family.add_metric([str(index), "peak"], info["peak"])
        return [family]
