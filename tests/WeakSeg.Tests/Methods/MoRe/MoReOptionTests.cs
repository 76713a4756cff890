using TorchSharp;
using WeakSeg.Methods;
using WeakSeg.Methods.Fsr;
using WeakSeg.Methods.MoRe;
using WeakSeg.Methods.ToCo;
using WeakSeg.Refinement.Par;
using WeakSeg.Tests.Support;
using WeakSeg.Training;
using static TorchSharp.torch;

namespace WeakSeg.Tests.Methods.MoRe;

/// <summary>MoRe's LAM map kind, the segmentation label source and the GCR / LIR ablation switches.</summary>
[Collection("Torch")]
public class MoReOptionTests
{
    static MoReConfig Tiny => MoReFixtureTests.TinyConfig with
    {
        NumClasses = 3, Backbone = MoReFixtureTests.TinyConfig.Backbone with { ImageSize = 64 }, CropSize = 64, CamScales = [1.0], Segmentation = new LossWeight(0.12, 0), Steps = 10, WarmupSteps = 0, BatchSize = 2,
    };

    static (Tensor Images, Tensor Labels) Batch()
    {
        using var generator = new torch.Generator(11);
        return (torch.randn(new long[] { 2, 3, 64, 64 }, generator: generator), torch.tensor(new float[] { 1, 0, 1, 0, 1, 1 }).reshape(2, 3));
    }

    static MoReNetwork Network(MoReConfig config, MoReNetwork? weightsFrom = null)
    {
        torch.manual_seed(4);
        var network = new MoReNetwork(config);
        if (weightsFrom is not null) network.load_state_dict(weightsFrom.state_dict());
        network.eval();
        return network;
    }

    [Fact]
    public void Lam_is_a_map_name_that_more_offers_and_the_other_single_stage_methods_refuse()
    {
        Assert.Equal(LocalizationMapKind.Lam, LocalizationMapKindNames.Parse("lam"));
        Assert.Equal("lam", LocalizationMapKindNames.Name(LocalizationMapKind.Lam));
        Assert.Contains("lam", LocalizationMapKindNames.All);
        Assert.Contains("lam", Assert.Throws<WeakSegException>(() => LocalizationMapKindNames.Parse("lamm")).Message);
        MethodRegistry.Get(MoReMethod.MethodName).Maps.Require(LocalizationMapKind.Lam, MoReMethod.MethodName);
        foreach (var other in new[] { ToCoMethod.MethodName, FsrMethod.MethodName })
        {
            var e = Assert.Throws<WeakSegException>(() => MethodRegistry.Get(other).Maps.Require(LocalizationMapKind.Lam, other));
            Assert.Contains($"method '{other}' has no lam map", e.Message);
        }
    }

    [Fact]
    public void Lam_maps_are_the_multi_scale_lam_of_the_image_classes_and_the_raw_dot_products_on_the_grid()
    {
        using var scope = torch.NewDisposeScope();
        torch.manual_seed(4);
        using var method = (MoReMethod)MethodRegistry.Get(MoReMethod.MethodName).Create(Tiny);
        method.Model.eval();
        using var noGrad = torch.no_grad();
        var (images, _) = Batch();
        var options = new LocalizationOptions { Scales = [1.0, 0.5], MapKind = LocalizationMapKind.Lam };
        var lam = ((IWsssMethod)method).Localize(images[0], [1, 3], options);
        var expected = MoReMaps.MultiScaleLam(method.Network, images.narrow(0, 0, 1), [1.0, 0.5])[0].index_select(0, torch.tensor(new long[] { 0, 2 }));
        TensorAssert.Close(expected, lam, 0, "LAM of classes 1 and 3");
        var cam = ((IWsssMethod)method).Localize(images[0], [1, 3], options with { MapKind = LocalizationMapKind.Fused });
        Assert.True(cam.sub(lam).abs().max().item<float>() > 1e-3, "the LAM is not the CAM");

        using var output = method.Network.Forward(images);
        var grid = ((IWsssMethod)method).PatchGridMaps(images, LocalizationMapKind.Lam);
        TensorAssert.Close(torch.einsum("bdhw,bkd->bkhw", output.FeatureMap, output.AttributeTokens), grid, 1e-5, "raw LAM on the patch grid");
    }

    [Fact]
    public void The_segmentation_label_source_changes_the_labels_the_segmentation_loss_reads()
    {
        using var scope = torch.NewDisposeScope();
        var (images, labels) = Batch();
        using var camNetwork = Network(Tiny);
        using var lamNetwork = Network(Tiny with { SegmentationLabels = MoReSegmentationLabels.Lam }, camNetwork);
        var par = new PixelAdaptiveRefinement(Tiny.Par);
        var (cam, _) = MoReMaps.MultiScaleCam(camNetwork, images, Tiny.CamScales);

        Tensor Refined(Tensor maps)
        {
            var (valid, _) = ToCoPseudoLabels.CamToLabel(maps, labels, Tiny.BandOptions(0.7, 0.25));
            return ToCoPseudoLabels.RefineCamsWithBackground(par, ToCoPseudoLabels.DenormalizeImages(images), valid, labels, 0.7, 0.25, null, Tiny.ParDownScale);
        }
        var fromCam = MoReTraining.SegmentationLabels(camNetwork, par, images, labels, cam);
        var fromLam = MoReTraining.SegmentationLabels(lamNetwork, par, images, labels, cam);
        Assert.True(Refined(cam).eq(fromCam).all().item<bool>(), "default: PAR-refined CAM labels");
        Assert.True(Refined(MoReMaps.MultiScaleLam(lamNetwork, images, Tiny.CamScales)).eq(fromLam).all().item<bool>(), "lam: PAR-refined LAM labels");
        long differing = fromCam.ne(fromLam).sum().item<long>();
        Assert.True(differing > 0, "the two sources gave the same labels");

        // The loss's seg part is the balanced CE against exactly these labels.
        foreach (var (network, expectedLabels) in new[] { (camNetwork, fromCam), (lamNetwork, fromLam) })
        {
            var terms = MoReTraining.Loss(network, par, images, labels, 0, new Random(3));
            using var output = network.forward(images);
            var logits = nn.functional.interpolate(output.Segmentation, size: [64, 64], mode: InterpolationMode.Bilinear, align_corners: false);
            var expected = ToCoLoss.Segmentation(logits, expectedLabels, Tiny.SegmentationReduction);
            Assert.Equal(expected.item<float>(), terms.Parts.Single(p => p.Name == "seg").Value.item<float>(), 5);
        }
    }

    [Fact]
    public void Without_gcr_the_class_tokens_skip_the_graph_layer_everywhere()
    {
        using var scope = torch.NewDisposeScope();
        var (images, labels) = Batch();
        using var gcr = Network(Tiny);
        using var plain = Network(Tiny with { UseGcr = false }, gcr);
        using var a = gcr.forward(images);
        using var b = plain.forward(images);
        TensorAssert.Close(a.ClassTokens, b.ClassTokens, 0, "same encoder");
        Assert.True(ReferenceEquals(b.ClassTokens, b.AttributeTokens), "no GCR: the class tokens are used as they are");
        Assert.True(a.AttributeTokens.sub(a.ClassTokens).abs().max().item<float>() > 1e-4, "GCR changes the tokens");
        var par = new PixelAdaptiveRefinement(Tiny.Par);
        var terms = MoReTraining.Loss(plain, par, images, labels, 0, new Random(3));
        Assert.Equal(MoReLoss.ClassTokenUniqueness(b.ClassTokens).item<float>(), terms.Parts.Single(p => p.Name == "attri").Value.item<float>(), 5);
        var lamWith = MoReMaps.MultiScaleLam(gcr, images, [1.0]);
        var lamWithout = MoReMaps.MultiScaleLam(plain, images, [1.0]);
        Assert.True(lamWith.sub(lamWithout).abs().max().item<float>() > 1e-3, "the LAM follows the switch");
    }

    [Fact]
    public void Without_lir_the_relation_losses_are_not_computed()
    {
        using var scope = torch.NewDisposeScope();
        var (images, labels) = Batch();
        var par = new PixelAdaptiveRefinement(Tiny.Par);
        using var lir = Network(Tiny);
        using var noLir = Network(Tiny with { UseLir = false }, lir);
        Assert.Equal(["cls", "cls_aux", "attri", "ptc", "cle", "une", "seg"], MoReTraining.Loss(lir, par, images, labels, 0, new Random(3)).Parts.Select(p => p.Name));
        var terms = MoReTraining.Loss(noLir, par, images, labels, 0, new Random(3));
        Assert.Equal(["cls", "cls_aux", "attri", "ptc", "seg"], terms.Parts.Select(p => p.Name));
    }

    /// <summary>The ablation switches of MoRe and FSR are recipe fields (<c>--set model.…</c>), with the methods' defaults on.</summary>
    [Fact]
    public void The_ablation_switches_are_recipe_fields()
    {
        static IMethodConfig Set(string method, params string[] assignments) =>
            assignments.Aggregate(WeakSeg.Pipelines.TrainRecipe.Preset(method, MethodPreset.Cpu).For(10), (r, a) => r.With(a)).ModelConfig;
        var more = (MoReConfig)Set(MoReMethod.MethodName, "model.use_gcr=false", "model.use_lir=false", "model.segmentation_labels=lam");
        Assert.Equal((false, false, MoReSegmentationLabels.Lam), (more.UseGcr, more.UseLir, more.SegmentationLabels));
        Assert.Equal((true, true, MoReSegmentationLabels.Cam), (MoReConfig.Paper.UseGcr, MoReConfig.Paper.UseLir, MoReConfig.Cpu.SegmentationLabels));
        var fsr = (FsrConfig)Set(FsrMethod.MethodName, "model.use_uncertain_distillation=false", "model.certain_token_pooling=gmp", "model.mask_strategy=random");
        Assert.Equal((false, true, CertainTokenPooling.Gmp, MaskStrategy.Random),
            (fsr.UseUncertainDistillation, fsr.UseCertainDistillation, fsr.CertainTokenPooling, fsr.MaskStrategy));
        Assert.True(FsrConfig.Paper.UseUncertainDistillation && FsrConfig.Paper.UseCertainDistillation);
    }
}
