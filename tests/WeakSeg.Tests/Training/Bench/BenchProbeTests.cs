using TorchSharp;
using WeakSeg.Tests.Support;
using WeakSeg.Training.Bench;

namespace WeakSeg.Tests.Training.Bench;

public class BenchProbeTests
{
    [Fact]
    public void Proc_status_rss_and_peak_are_parsed_in_bytes()
    {
        const string status = "Name:\tdotnet\nVmPeak:\t 9000000 kB\nVmHWM:\t  204800 kB\nVmRSS:\t  102400 kB\nThreads:\t12\n";
        var m = ProcessMemory.ParseProcStatus(status);
        Assert.Equal(102400L * 1024, m.RssBytes);
        Assert.Equal(204800L * 1024, m.PeakRssBytes);
        Assert.Equal(100.0, m.RssMiB);
        Assert.Equal(200.0, m.PeakRssMiB);
        Assert.Throws<FormatException>(() => ProcessMemory.ParseProcStatus("Name:\tx\n"));
        var live = ProcessMemory.Read();
        Assert.True(live.RssBytes > 0 && live.PeakRssBytes >= live.RssBytes);
    }

    [Fact]
    public void Rss_growth_probe_samples_the_two_chosen_steps()
    {
        var probe = new RssGrowthProbe(2, 5);
        long calls = 0;
        MemorySnapshot Fake() => new(1000 + 10 * ++calls, 0);
        for (long s = 1; s <= 4; s++) probe.OnStep(s, Fake);
        Assert.Null(probe.GrowthBytes);
        probe.OnStep(5, Fake);
        Assert.Equal(1010, probe.AtFirst!.Value.RssBytes);
        Assert.Equal(1020, probe.AtSecond!.Value.RssBytes);
        Assert.Equal(10, probe.GrowthBytes);
    }

    [Fact]
    public void Vit_flops_match_a_hand_count_for_a_tiny_config()
    {
        // 8×8 image, patch 4 → N = 4 patches, 1 class token → T = 5, D = 4, depth 1, MLP 8.
        // patch embed 2·4·(3·16)·4 = 1536
        // block: qkv 2·5·4·12 = 480, q·kᵀ 2·5·5·4 = 200, attn·v 200, proj 2·5·4·4 = 160, mlp 2·5·4·8·2 = 640 → 1680
        var d = new VitDims(8, 8, 4, 4, 1, MlpRatio: 2.0, ClassTokens: 1);
        Assert.Equal(1536, VitFlops.PatchEmbed(d));
        Assert.Equal(1680, VitFlops.Block(d));
        Assert.Equal(3216, VitFlops.Forward(d));
        Assert.Equal(3 * 3216, VitFlops.TrainStep(d));
        // V2 conv head 2·N·9·D·K with K = 2: 2·4·9·4·2 = 576
        Assert.Equal(576, VitFlops.ConvHead3x3(d, 2));
        Assert.Equal(3216 + 576, VitFlops.Forward(d, VitFlops.ConvHead3x3(d, 2)));
    }

    [Fact]
    public void Deit_small_forward_is_the_published_4_6_giga_multiply_adds()
    {
        // DeiT paper, Table 1: DeiT-S 4.6 G "FLOPs" (multiply-adds) at 224².
        double macs = VitFlops.Forward(VitDims.DeitSmall()) / 2;
        Assert.InRange(macs, 4.55e9, 4.65e9);
        Assert.Equal(20, VitDims.DeitSmall(224, classTokens: 20).ClassTokens);
        Assert.Equal(216, VitDims.DeitSmall(224, classTokens: 20).Tokens);
    }

    [Fact]
    public void Throughput_figures_by_hand()
    {
        // 10 images/s × 3e9 FLOP/image = 30 GFLOP/s, against a 120 GFLOP/s GEMM → 0.25
        var t = TrainThroughput.Compute(10, 3e9, 120);
        Assert.Equal(30, t.AchievedGflops, 9);
        Assert.Equal(0.25, t.FractionOfGemm, 12);
        Assert.Equal(2.0 * 1024 * 1024 * 1024, GemmCeiling.MatmulFlops(1024, 1024, 1024));
        Assert.Equal(2.0 * 2 * 3 * 4, GemmCeiling.MatmulFlops(2, 3, 4));
    }
}

[Collection("Torch")]
public class GemmCeilingTests
{
    [Fact]
    public void Gemm_measurement_is_consistent_with_its_median_time()
    {
        // The thread count is process-wide and other tests of the collection change it: set it here, so the recorded figure does not
        // depend on which test ran before.
        int before = torch.get_num_threads();
        try
        {
            torch.set_num_threads(2);
            var m = GemmCeiling.Measure(n: 128, warmup: 1, repeats: 3);
            Assert.Equal(128, m.N);
            Assert.Equal(2, m.Threads);
            Assert.True(m.MedianSeconds > 0);
            Assert.Equal(2.0 * 128 * 128 * 128 / m.MedianSeconds / 1e9, m.Gflops, 9);
        }
        finally
        {
            torch.set_num_threads(before);
        }
    }

    [Fact]
    public void Gflops_per_cpu_second_by_hand()
    {
        // 6 matmuls of 100³ (2e6 FLOP each) in 0.5 CPU seconds: 1.2e7 / 0.5 / 1e9 = 0.024 GFLOP per CPU-second
        Assert.Equal(0.024, GemmCeiling.GflopsPerCpuSecond(100, 6, 0.5), 15);
        Assert.Equal(6 * 2e6 / 1e-9 / 1e9, GemmCeiling.GflopsPerCpuSecond(100, 6, 0));     // no CPU time measured: 1 ns, not a division by 0
        var m = GemmCeiling.MeasureWithCpuTime(n: 64, warmup: 1, repeats: 3);
        Assert.Equal(64, m.Wall.N);
        Assert.True(double.IsFinite(m.GflopsPerCpuSecond) && m.GflopsPerCpuSecond > 0);
    }
}

