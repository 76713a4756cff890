using System.Text.Json;
using TorchSharp;
using WeakSeg.Tests.Support;
using WeakSeg.Training;

namespace WeakSeg.Tests.Training;

[Collection("Torch")]
public class SgdPolyTests
{
    [Fact]
    public void Poly_schedule_matches_hand_values_with_and_without_warmup()
    {
        // T = 10, base 1, min 0.1, power 2: lr(s) = 0.1 + 0.9·(1 − s/10)²
        var lr = new LearningRateSchedule(ScheduleKind.Poly, 10, 1.0, 0.1, 0, 0.0, 2.0);
        Assert.Equal(1.0, lr[0], 12);
        Assert.Equal(0.1 + 0.9 * 0.25, lr[5], 12);          // (1 − 0.5)² = 0.25 → 0.325
        Assert.Equal(0.1 + 0.9 * 0.01, lr[9], 12);          // (1 − 0.9)² = 0.01 → 0.109
        // warm-up W = 2 from 0.2, then poly over the remaining 8 steps: s = 6 → t = 4/8
        Assert.Equal(0.2, LearningRateSchedule.PolyAt(0, 10, 1.0, 0.1, 2.0, 2, 0.2), 12);
        Assert.Equal(0.6, LearningRateSchedule.PolyAt(1, 10, 1.0, 0.1, 2.0, 2, 0.2), 12);
        Assert.Equal(1.0, LearningRateSchedule.PolyAt(2, 10, 1.0, 0.1, 2.0, 2, 0.2), 12);
        Assert.Equal(0.325, LearningRateSchedule.PolyAt(6, 10, 1.0, 0.1, 2.0, 2, 0.2), 12);
        // power 0.9 (WeakTr/Segmenter): s = 50 of 100, base 1e-4, min 1e-5
        var o = new TrainerOptions { Schedule = ScheduleKind.Poly, Steps = 100, BaseLr = 1e-4, MinLr = 1e-5, WarmupSteps = 0, PolyPower = 0.9 };
        Assert.Equal(1e-5 + 9e-5 * Math.Pow(0.5, 0.9), LearningRateSchedule.For(o)[50], 15);
        Assert.Equal(LearningRateSchedule.For(o)[50], LearningRateSchedule.At(o, 50), 15);
        // the default options still give warm-up + cosine
        var d = new TrainerOptions();
        Assert.Equal(LearningRateSchedule.At(900, d.Steps, d.BaseLr, d.MinLr, d.WarmupSteps, d.WarmupStartLr), LearningRateSchedule.For(d)[900], 15);
        Assert.Equal((OptimizerKind.AdamW, ScheduleKind.WarmupCosine), (d.Optimizer, d.Schedule));
    }

    [Fact]
    public void Sgd_momentum_and_weight_decay_and_lr_scale_match_hand_computation_over_two_steps()
    {
        // loss = Σ_p Σ p  ⇒ ∂loss/∂p = 1 everywhere. PyTorch SGD: g = 1 + wd·p (decay groups only);
        // step 1: buf = g₀, p₁ = p₀ − lr·g₀; step 2: buf = m·g₀ + g₁, p₂ = p₁ − lr·buf. lr = 0.1 × scale (0.5 for fc1.*), m = 0.9, wd = 0.2.
        torch.manual_seed(11);
        using var net = new TinyNet();
        var options = new TrainerOptions { Optimizer = OptimizerKind.Sgd, Momentum = 0.9, Schedule = ScheduleKind.Poly, Steps = 10, WarmupSteps = 0, BaseLr = 0.1, MinLr = 0.0, WeightDecay = 0.2 };
        Func<string, double> scale = name => name.StartsWith("fc1.") ? 0.5 : 1.0;
        using var setup = ParameterGroups.Create(net.named_parameters(), options, scale);
        Assert.IsType<ScalarSafe.SGD>(setup.Optimizer);
        setup.SetLearningRate(0.1);
        var p0 = net.named_parameters().ToDictionary(p => p.name, p => p.parameter.detach().clone());
        void Step()
        {
            net.zero_grad();
            using (var loss = net.parameters().Select(p => p.sum()).Aggregate((a, b) => a + b)) loss.backward();
            setup.Optimizer.step();
        }
        Step();
        var p1 = net.named_parameters().ToDictionary(p => p.name, p => p.parameter.detach().clone());
        Step();
        foreach (var (name, p) in net.named_parameters())
        {
            double lr = 0.1 * scale(name);
            double wd = name is "fc1.weight" or "fc2.weight" ? 0.2 : 0.0;
            var g0 = 1 + wd * p0[name];
            var expected1 = p0[name] - lr * g0;
            var g1 = 1 + wd * expected1;
            var expected2 = expected1 - lr * (0.9 * g0 + g1);
            Assert.True(torch.allclose(p1[name], expected1, rtol: 1e-5, atol: 1e-6), name + " step 1");
            Assert.True(torch.allclose(p, expected2, rtol: 1e-5, atol: 1e-6), name + " step 2");
        }
    }

    [Fact]
    public void Trainer_with_sgd_and_poly_logs_poly_rates_and_resumes_bitwise()
    {
        using var d1 = TestPaths.NewTempDir();
        using var d2 = TestPaths.NewTempDir();
        var o = new TrainerOptions
        {
            Optimizer = OptimizerKind.Sgd, Momentum = 0.9, Schedule = ScheduleKind.Poly, PolyPower = 0.9, Steps = 8, BatchSize = 4,
            BaseLr = 0.05, MinLr = 1e-3, WarmupSteps = 0, WarmupStartLr = 0, WeightDecay = 0.01, CheckpointEvery = 4, LogEvery = 1, Seed = 3,
        };
        var a = TinyTrainable.Create(o.Seed);
        var ta = new Trainer(o, d1.File("run"));
        ta.Run(a, SyntheticBatches.Create());
        var logged = File.ReadLines(ta.MetricsPath).Select(l => JsonDocument.Parse(l).RootElement.GetProperty("lr").GetDouble()).ToArray();
        Assert.Equal(Enumerable.Range(0, 8).Select(s => 1e-3 + 0.049 * Math.Pow(1 - s / 8.0, 0.9)).ToArray(), logged, (x, y) => Math.Abs(x - y) < 1e-12);

        using var cts = new CancellationTokenSource();
        new Trainer(o, d2.File("run")) { StepCompleted = r => { if (r.Step == 3) cts.Cancel(); } }
            .Run(TinyTrainable.Create(o.Seed), SyntheticBatches.Create(), cancellationToken: cts.Token);
        var e = Assert.Throws<WeakSegException>(() => new Trainer(o with { Optimizer = OptimizerKind.AdamW }, d2.File("run"))
            .Run(TinyTrainable.Create(o.Seed), SyntheticBatches.Create(), resume: true));
        Assert.Contains("Optimizer is AdamW but the checkpoint used Sgd", e.Message);
        var b = TinyTrainable.Create(seed: 99);
        Assert.True(new Trainer(o, d2.File("run")).Run(b, SyntheticBatches.Create(), resume: true).Completed);
        Assert.Equal(Weights.Flatten(a.Net), Weights.Flatten(b.Net));
    }
}
