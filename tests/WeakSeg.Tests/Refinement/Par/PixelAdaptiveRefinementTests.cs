using TorchSharp;
using WeakSeg.Interop;
using WeakSeg.Refinement.Par;
using WeakSeg.Tests.Support;
using static TorchSharp.torch;

namespace WeakSeg.Tests.Refinement.Par;

/// <summary>PAR against ToCo's model/PAR.py (tests/fixtures/single_stage/README.md: toco_par_d6_it10, toco_par_d2_it3).</summary>
[Collection("Torch")]
public class PixelAdaptiveRefinementTests
{
    static SafetensorsFile Case(string name) => SafetensorsFile.Read(TestPaths.Fixture("single_stage", name + ".safetensors"));

    [Fact]
    public void Kernel_and_distances_match_the_reference()
    {
        var io = Case("toco_par_d6_it10");
        using var scope = torch.NewDisposeScope();
        TensorAssert.Close(io.ToTorch("kernel"), PixelAdaptiveRefinement.NeighbourKernel(), 0, "kernel");
        var par = new PixelAdaptiveRefinement(ParConfig.Default);
        TensorAssert.Close(io.ToTorch("pos").flatten(), par.NeighbourDistances(), 1e-6, "pos");
        Assert.Equal(48, par.Config.NeighbourCount);
    }

    [Fact]
    public void Six_dilations_ten_iterations_match_the_reference()
    {
        var io = Case("toco_par_d6_it10");
        using var scope = torch.NewDisposeScope();
        var images = io.ToTorch("imgs");
        var masks = io.ToTorch("masks");
        TensorAssert.Close(io.ToTorch("masks_resized"), new PixelAdaptiveRefinement(new ParConfig { Iterations = 0 }).Refine(images, masks), 1e-4, "masks_resized");
        TensorAssert.Close(io.ToTorch("out_iter1"), new PixelAdaptiveRefinement(new ParConfig { Iterations = 1 }).Refine(images, masks), 1e-4, "out_iter1");
        TensorAssert.Close(io.ToTorch("out"), new PixelAdaptiveRefinement().Refine(images, masks), 1e-4, "out");
    }

    [Fact]
    public void Two_dilations_batch_of_two_match_the_reference()
    {
        var io = Case("toco_par_d2_it3");
        using var scope = torch.NewDisposeScope();
        var par = new PixelAdaptiveRefinement(new ParConfig { Dilations = [1, 2], Iterations = 3 });
        TensorAssert.Close(io.ToTorch("pos").flatten(), par.NeighbourDistances(), 1e-6, "pos");
        var images = io.ToTorch("imgs");
        var masks = io.ToTorch("masks");
        TensorAssert.Close(io.ToTorch("masks_resized"), PixelAdaptiveRefinement.ResizeMasks(masks, 16, 16), 1e-4, "masks_resized");
        TensorAssert.Close(io.ToTorch("out"), par.Refine(images, masks), 1e-4, "out");
    }

    [Fact]
    public void Affinity_rows_sum_to_one_plus_w2_and_constant_masks_stay_constant()
    {
        using var scope = torch.NewDisposeScope();
        torch.manual_seed(3);
        var par = new PixelAdaptiveRefinement();
        var images = torch.rand(1, 3, 20, 24);
        var affinity = par.Affinity(images);                       // [1, 1, 48, 20, 24]
        var rowSums = affinity.sum(2);
        TensorAssert.Close(torch.full_like(rowSums, 1.01), rowSums, 1e-5, "row sums");
        var constant = torch.full(new long[] { 1, 2, 20, 24 }, 0.5f);
        var refined = par.Propagate(constant, affinity, 1);
        TensorAssert.Close(torch.full_like(constant, 0.5 * 1.01), refined, 1e-5, "one step on a constant mask");
    }

    [Fact]
    public void Bad_configuration_is_rejected_with_the_value()
    {
        var e = Assert.Throws<WeakSegException>(() => new PixelAdaptiveRefinement(new ParConfig { Dilations = [1, 0], W1 = -1 }));
        Assert.Contains("Dilations must be ≥ 1 (got 0)", e.Message);
        Assert.Contains("W1 must be a positive number (got -1)", e.Message);
    }
}
