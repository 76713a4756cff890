using TorchSharp;
using WeakSeg.Methods;
using WeakSeg.Methods.AuxSegNet;
using WeakSeg.Refinement.Saliency;
using WeakSeg.Tests.Support;
using WeakSeg.Training;
using static TorchSharp.torch;

namespace WeakSeg.Tests.Methods.AuxSegNet;

/// <summary>AuxSegNet's unary affinity by hand, its presets and optimiser, online labels, losses and saliency input.</summary>
[Collection("Torch")]
public class AuxSegNetTests
{
    [Fact]
    public void Unary_affinity_and_its_context_match_a_hand_computation()
    {
        using var scope = torch.NewDisposeScope();
        using var noGrad = torch.no_grad();
        // F: 2 channels on a 1×3 map; mask conv weights (1, −1), bias 0.5 → logits F0 − F1 + 0.5
        double[,] f = { { 1.0, 0.0, 2.0 }, { 0.5, 1.0, -1.0 } };
        var features = torch.tensor(new float[] { 1, 0, 2, 0.5f, 1, -1 }).reshape(1, 2, 1, 3);
        using var mask = nn.Conv2d(2, 1, 1);
        mask.weight!.copy_(torch.tensor(new float[] { 1, -1 }).reshape(1, 2, 1, 1));
        mask.bias!.fill_(0.5);
        var logits = Enumerable.Range(0, 3).Select(i => f[0, i] - f[1, i] + 0.5).ToArray();     // 1.0, −0.5, 3.5
        var z = logits.Sum(Math.Exp);
        var u = logits.Select(l => Math.Exp(l) / z).ToArray();
        var unary = AuxSegNetAffinity.Unary(features, mask);
        TensorAssert.Close(torch.tensor(u.Select(v => (float)v).ToArray()).reshape(1, 3), unary, 1e-6, "u = softmax over pixels");
        var context = AuxSegNetAffinity.Context(unary, features);
        var expected = new float[] { (float)(u[0] * 1 + u[1] * 0 + u[2] * 2), (float)(u[0] * 0.5 + u[1] * 1 - u[2] * 1) };
        TensorAssert.Close(torch.tensor(expected).reshape(1, 2, 1, 1), context, 1e-6, "Σ_i u_i F_i");
    }

    [Fact]
    public void Presets_paper_names_the_resnet38_weights_and_cpu_is_valid()
    {
        var paper = AuxSegNetConfig.Paper;
        Assert.Equal((0.2, 0.06, 128, 321, 7e-4, 10.0, 4, 39_675L), (paper.CamThreshold, paper.SaliencyThreshold, paper.BranchWidth, paper.CropSize,
            paper.LearningRate, paper.HeadLearningRateScale, paper.BatchSize, paper.Steps));
        Assert.Contains(paper.Validate(), e => e.StartsWith("Trunk ResNet38 (the paper's) needs the user's ResNet-38 weights"));
        Assert.Equal([MethodConfigChecks.UnboundClassCount], AuxSegNetConfig.Cpu.Validate());    // K comes from the dataset
        Assert.Empty(AuxSegNetConfig.Cpu.WithNumClasses(3).Validate());
        var e = Assert.Throws<WeakSegException>(() => MethodRegistry.Get(AuxSegNetMethod.MethodName).Create(AuxSegNetConfig.Paper));
        Assert.Contains("ResNet-38", e.Message);
        Assert.Contains((AuxSegNetConfig.Cpu with { CrossTaskKernel = 5 }).Validate(), m => m.StartsWith("CrossTaskKernel must be 3"));
    }

    [Fact]
    public void Optimiser_is_sgd_momentum_0_9_with_decay_by_default_and_the_reference_quirk_as_an_option()
    {
        var intended = AuxSegNetConfig.Cpu.ToTrainerOptions();
        Assert.Equal((OptimizerKind.Sgd, 0.9, 1e-5, ScheduleKind.PolyFromStart, 0.9, 0L), (intended.Optimizer, intended.Momentum, intended.WeightDecay,
            intended.Schedule, intended.PolyPower, intended.WarmupSteps));
        var reference = (AuxSegNetConfig.Cpu with { Optimizer = AuxSegNetOptimizer.Reference }).ToTrainerOptions();
        Assert.Equal((OptimizerKind.Sgd, 1e-5, 0.0), (reference.Optimizer, reference.Momentum, reference.WeightDecay));
    }

    static AuxSegNetConfig Small => AuxSegNetConfig.Cpu with { NumClasses = 3, BranchWidth = 8, CropSize = 32, PretrainedTrunk = false, LabelStartStep = 2 };

    [Fact]
    public void Heads_train_ten_times_faster_except_the_cross_task_weighting_and_the_trunk_stem_and_batchnorm_are_frozen()
    {
        using var method = (AuxSegNetMethod)MethodRegistry.Get(AuxSegNetMethod.MethodName).Create(Small);
        var trainable = ((ITrainable)method).TrainableParameters().Select(p => p.Name).ToList();
        Assert.DoesNotContain("backbone.conv1.weight", trainable);
        Assert.DoesNotContain("backbone.layer1.0.bn1.weight", trainable);
        Assert.Contains("backbone.layer1.0.conv1.weight", trainable);
        Assert.Equal(10.0, method.LearningRateScale("heads.seg_conv1.weight"));
        Assert.Equal(10.0, method.LearningRateScale("heads.fc8.weight"));
        Assert.Equal(10.0, method.LearningRateScale("heads.sal_unary.mask.weight"));
        Assert.Equal(1.0, method.LearningRateScale("heads.cross_att.0.weight"));
        Assert.Equal(1.0, method.LearningRateScale("backbone.layer2.0.conv1.weight"));
    }

    [Fact]
    public void A_step_uses_the_five_losses_after_the_label_start_and_never_needs_masks()
    {
        using var scope = torch.NewDisposeScope();
        torch.manual_seed(3);
        using var method = (AuxSegNetMethod)MethodRegistry.Get(AuxSegNetMethod.MethodName).Create(Small);
        method.Model.train();
        var images = torch.randn(2, 3, 32, 32);
        var labels = torch.tensor(new float[] { 1, 0, 0, 0, 1, 1 }).reshape(2, 3);
        var batch = new TrainBatch(images, labels, Masks: null);
        var early = method.ComputeLoss(batch, new TrainStepContext(1, 10, 1e-3, new Random(0)));
        Assert.Equal(["cls"], early.Parts.Select(p => p.Name));
        var late = method.ComputeLoss(batch, new TrainStepContext(2, 10, 1e-3, new Random(0)));
        Assert.Equal(["cls", "seg_init", "seg_refined", "sal_init", "sal_refined"], late.Parts.Select(p => p.Name));
        var sum = late.Parts.Sum(p => p.Value.item<float>());
        Assert.Equal(sum, late.Total.item<float>(), 4);
        late.Total.backward();
        Assert.True(method.Network.heads.seg_conv4.weight!.grad is { } g && g.abs().sum().item<float>() > 0);
        var segOnly = (AuxSegNetMethod)MethodRegistry.Get(AuxSegNetMethod.MethodName).Create(Small with { SaliencyAuxiliary = false, CrossTaskAffinity = false });
        using (segOnly)
            Assert.Equal(["cls", "seg_init"], segOnly.ComputeLoss(batch, new TrainStepContext(2, 10, 1e-3, new Random(0))).Parts.Select(p => p.Name));
    }

    [Fact]
    public void Online_labels_follow_the_fusion_rule_on_the_normalised_cam_and_the_estimated_saliency()
    {
        using var scope = torch.NewDisposeScope();
        var images = torch.randn(1, 3, 16, 16);
        var cam = torch.zeros(1, 2, 2, 2);
        cam[0, 1] = torch.tensor(new float[] { 4, 0, 0, 0 }).reshape(2, 2);             // class 2 peaks top left
        cam[0, 0] = torch.full(2, 2, 9f);                                                 // class 1 is absent from the image
        var (labels, saliency) = AuxSegNetMethod.OnlineLabels(cam, images, torch.tensor(new float[] { 0, 1 }).reshape(1, 2), Small);
        var up = nn.functional.interpolate(cam, [16, 16], mode: InterpolationMode.Bilinear, align_corners: false);
        var expected = AuxSegNetLabels.Fuse(AuxSegNetLabels.NormalizeCam(up), saliency, torch.tensor(new float[] { 0, 1 }).reshape(1, 2));
        Assert.Equal(expected.data<long>().ToArray(), labels.data<long>().ToArray());
        Assert.DoesNotContain(1L, labels.data<long>().ToArray());                          // an absent class never labels a pixel
        Assert.Contains(2L, labels.data<long>().ToArray());
        Assert.True(saliency.min().item<float>() >= 0 && saliency.max().item<float>() <= 1);
    }

    [Fact]
    public void Spectral_residual_saliency_finds_a_small_object_on_a_flat_background()
    {
        const int size = 64;
        var rgb = new byte[size * size * 3];
        for (int i = 0; i < rgb.Length; i++) rgb[i] = 90;
        for (int y = 24; y < 34; y++)
            for (int x = 36; x < 46; x++)
                for (int c = 0; c < 3; c++) rgb[(y * size + x) * 3 + c] = 250;
        var map = SaliencyMaps.Estimate(rgb, size, size);
        Assert.Equal(size * size, map.Length);
        Assert.Equal(1f, map.Max(), 4);
        // the spectral residual lights up the square (its edges most): the box around it against the background far from it
        double Mean(Func<int, int, bool> where) => Enumerable.Range(0, size * size).Where(i => where(i / size, i % size)).Average(i => map[i]);
        double box = Mean((y, x) => y >= 21 && y < 37 && x >= 33 && x < 49);
        double far = Mean((y, x) => y < 11 || y >= 47 || x < 23);
        int peak = Array.IndexOf(map, map.Max());
        Assert.InRange(peak / size, 21, 36);
        Assert.InRange(peak % size, 33, 48);
        Assert.True(box > 5 * far, $"box {box}, far {far}");
    }

    [Fact]
    public void Saliency_folder_maps_round_trip_and_a_missing_or_wrongly_sized_map_is_an_error_naming_the_file()
    {
        using var dir = TestPaths.NewTempDir();
        var map = Enumerable.Range(0, 6).Select(i => i / 5f).ToArray();
        SaliencyMaps.Write(SaliencyMaps.PathOf(dir.Path, "a"), map, 2, 3);
        var read = SaliencyMaps.Read(dir.Path, "a", 2, 3);
        Assert.Equal(map.Select(v => Math.Round(v * 255) / 255), read.Select(v => Math.Round((double)v, 6)).Select(v => Math.Round(v * 255) / 255));
        var missing = Assert.Throws<WeakSegException>(() => SaliencyMaps.Read(dir.Path, "b", 2, 3));
        Assert.StartsWith(Path.Combine(dir.Path, "b.png") + ": saliency map of image 'b' not found", missing.Message);
        var wrong = Assert.Throws<WeakSegException>(() => SaliencyMaps.Read(dir.Path, "a", 3, 3));
        Assert.Equal(Path.Combine(dir.Path, "a.png") + ": saliency map is 3×2, but image 'a' is 3×3", wrong.Message);
    }
}
