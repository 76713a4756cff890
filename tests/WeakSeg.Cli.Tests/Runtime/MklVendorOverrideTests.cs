using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics.X86;
using System.Text.Json;
using TorchSharp;
using WeakSeg.Runtime;
using WeakSeg.Tests.Support;

namespace WeakSeg.Tests.Runtime;

[Collection("Torch")]
public class MklVendorOverrideTests
{
    static bool OverrideExpected =>
        RuntimeInformation.ProcessArchitecture == System.Runtime.InteropServices.Architecture.X64 && OperatingSystem.IsLinux() && X86Base.IsSupported &&
        MklVendorOverride.CpuVendorString() != "GenuineIntel" &&
        Environment.GetEnvironmentVariable(MklVendorOverride.EnvironmentVariable) is null or "" or "1";

    [Fact]
    public void Cpu_vendor_string_is_the_twelve_cpuid_characters()
    {
        var vendor = MklVendorOverride.CpuVendorString();
        if (!X86Base.IsSupported) return;
        Assert.Equal(12, vendor.Length);
        var cpuinfo = "/proc/cpuinfo";
        if (File.Exists(cpuinfo))
            Assert.Contains($"vendor_id\t: {vendor}", File.ReadAllText(cpuinfo));
    }

    [Fact]
    public void Test_host_has_the_override_in_place_before_mkl_chose_its_kernels()
    {
        TorchRuntime.EnsureLoaded();
        using (var a = torch.ones(256, 256)) using (var p = torch.mm(a, a)) Assert.Equal(256f, p[0, 0].item<float>());
        var status = MklVendorOverride.Status;
        int? level = MklVendorOverride.MklCpuDispatchLevel();
        Assert.NotNull(level);   // the bundled libtorch links MKL
        if (OverrideExpected)
        {
            Assert.Equal(MklVendorOverrideState.Active, status.State);
            // MKL caches its CPU detection at its first call: level 0 here would mean some GEMM ran before the patch.
            Assert.True(level > 0, $"MKL dispatch level {level}: the vendor override came after MKL's first call");
        }
        else
        {
            Assert.NotEqual(MklVendorOverrideState.Active, status.State);
        }
    }

    [Fact]
    public void Gemm_and_conv_match_a_double_precision_brute_force_and_repeat_bitwise()
    {
        using var scope = torch.NewDisposeScope();
        using var gen = new torch.Generator(77);
        var a = torch.randn(37, 200, generator: gen);
        var b = torch.randn(200, 53, generator: gen);
        var x = torch.randn(2, 8, 11, 13, generator: gen);
        var w = torch.randn(16, 8, 3, 3, generator: gen);
        float[] mm1 = torch.mm(a, b).data<float>().ToArray(), mm2 = torch.mm(a, b).data<float>().ToArray();
        float[] cv1 = torch.nn.functional.conv2d(x, w, padding: new long[] { 1, 1 }).data<float>().ToArray();
        float[] cv2 = torch.nn.functional.conv2d(x, w, padding: new long[] { 1, 1 }).data<float>().ToArray();
        Assert.Equal(mm1, mm2);   // same setting, same process: bitwise
        Assert.Equal(cv1, cv2);

        float[] av = a.data<float>().ToArray(), bv = b.data<float>().ToArray(), xv = x.data<float>().ToArray(), wv = w.data<float>().ToArray();
        for (int i = 0; i < 37; i++)
            for (int j = 0; j < 53; j++)
            {
                double s = 0;
                for (int k = 0; k < 200; k++) s += (double)av[i * 200 + k] * bv[k * 53 + j];
                Assert.True(Math.Abs(s - mm1[i * 53 + j]) < 1e-4, $"mm[{i},{j}] = {mm1[i * 53 + j]}, brute force {s}");
            }
        int h = 11, wd = 13;
        for (int n = 0; n < 2; n++)
            for (int o = 0; o < 16; o++)
                for (int y = 0; y < h; y++)
                    for (int xx = 0; xx < wd; xx++)
                    {
                        double s = 0;
                        for (int c = 0; c < 8; c++)
                            for (int dy = -1; dy <= 1; dy++)
                                for (int dx = -1; dx <= 1; dx++)
                                {
                                    int yy = y + dy, xc = xx + dx;
                                    if (yy < 0 || yy >= h || xc < 0 || xc >= wd) continue;
                                    s += (double)xv[((n * 8 + c) * h + yy) * wd + xc] * wv[((o * 8 + c) * 3 + dy + 1) * 3 + dx + 1];
                                }
                        float got = cv1[((n * 16 + o) * h + y) * wd + xx];
                        Assert.True(Math.Abs(s - got) < 1e-4, $"conv[{n},{o},{y},{xx}] = {got}, brute force {s}");
                    }
    }

    [Fact]
    public void Bad_environment_value_is_one_clear_error()
    {
        var (code, stdout, stderr) = RunCli(["env", "--gemm-size", "0"], "maybe");
        Assert.Equal(1, code);
        Assert.Equal("", stdout.Trim());
        Assert.Equal($"error: {MklVendorOverride.EnvironmentVariable}=maybe: expected 0 (off) or 1 (on, the default).", stderr.Trim());
    }

    [Fact]
    public void Environment_variable_turns_the_override_off_in_a_fresh_process()
    {
        var (code, off, _) = RunCli(["env", "--gemm-size", "0"], "0");
        Assert.Equal(0, code);
        Assert.Contains("mkl vendor override off: turned off by WEAKSEG_MKL_VENDOR_OVERRIDE=0", off);
        var (code2, on, _) = RunCli(["env", "--gemm-size", "0"], "1");
        Assert.Equal(0, code2);
        if (OverrideExpected)
        {
            Assert.Contains("mkl vendor override active", on);
            Assert.Contains("mkl dispatch level 0 ", off);        // MKL's generic path on this non-Intel CPU
            Assert.DoesNotContain("mkl dispatch level 0 ", on);   // the wider kernels
        }
    }

    /// <summary>The same fixed MCTformer-V2 training (bench train, cpu model, seed 0, 3 AdamW steps, 1 thread) in fresh
    /// processes with the override off and on: losses agree to float rounding across settings and repeat bitwise within one.</summary>
    [Fact]
    public void Training_steps_agree_with_and_without_the_override_and_repeat_bitwise()
    {
        using var dir = TestPaths.NewTempDir();
        (float First, float Last) Run(string setting, string name)
        {
            var json = dir.File(name + ".json");
            var (code, stdout, stderr) = RunCli(["bench", "train", "--model", "cpu", "--steps-long", "3", "--batch-size", "2", "--threads", "1",
                "--warmup-steps", "0", "--probe-step", "1", "--gemm-size", "64", "--json", json], setting);
            Assert.True(code == 0, $"bench train with {MklVendorOverride.EnvironmentVariable}={setting} failed: {stderr}\n{stdout}");
            using var doc = JsonDocument.Parse(File.ReadAllText(json));
            return (doc.RootElement.GetProperty("loss_first").GetSingle(), doc.RootElement.GetProperty("loss_last").GetSingle());
        }
        var off1 = Run("0", "off1");
        var on1 = Run("1", "on1");
        var off2 = Run("0", "off2");
        var on2 = Run("1", "on2");
        Assert.Equal(off1, off2);   // bitwise, override off
        Assert.Equal(on1, on2);     // bitwise, override on
        Assert.True(off1.First > 0.5f && float.IsFinite(off1.Last));
        Assert.True(Math.Abs(on1.First - off1.First) <= 1e-5 * Math.Abs(off1.First), $"first loss {on1.First} (on) vs {off1.First} (off)");
        Assert.True(Math.Abs(on1.Last - off1.Last) <= 1e-4 * Math.Abs(off1.Last), $"loss after 3 steps {on1.Last} (on) vs {off1.Last} (off)");
        Assert.NotEqual(off1.First, off1.Last);   // the steps really trained
    }

    /// <summary>Runs the CLI (weakseg.dll next to the test assembly) in a fresh process with the override variable set.</summary>
    internal static (int Code, string Stdout, string Stderr) RunCli(string[] args, string overrideSetting) =>
        CliProcess.Run(args, new Dictionary<string, string> { [MklVendorOverride.EnvironmentVariable] = overrideSetting });
}
