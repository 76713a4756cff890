using TorchSharp;
using static TorchSharp.torch;

namespace WeakSeg.Data;

/// <summary>
/// A batch as managed arrays (built on loader worker threads; converted to tensors on the training thread, because
/// TorchSharp dispose scopes are thread-static).
/// </summary>
public sealed class ImageBatch
{
    /// <summary>B×3×H×W, ImageNet-normalised.</summary>
    public required float[] Images { get; init; }
    /// <summary>B×H×W class indices, 255 = ignore/padding; null when the loader does not load masks.</summary>
    public byte[]? Masks { get; init; }
    /// <summary>B×H×W saliency bytes (0–254 for 0–1, <see cref="SaliencyOutside"/> = outside the image); null when the loader reads no saliency.</summary>
    public byte[]? Saliency { get; init; }

    /// <summary>Saliency byte of a pixel outside the image (the crop's padding); saliency there counts as 0.</summary>
    public const byte SaliencyOutside = 255;
    /// <summary>B×K multi-hot over the K foreground classes: class c ↦ column c − 1.</summary>
    public required float[] Labels { get; init; }
    public required string[] Names { get; init; }
    /// <summary>Dataset indices of the samples (into the loader's sample list).</summary>
    public required int[] Indices { get; init; }
    public required int Count { get; init; }
    public required int Height { get; init; }
    public required int Width { get; init; }
    public required int NumClasses { get; init; }
    /// <summary>Global step of this batch (epoch · BatchesPerEpoch + batch index).</summary>
    public long Step { get; init; }
    public int Epoch { get; init; }

    /// <summary>Images [B,3,H,W] float32 and labels [B,K] float32 on <paramref name="device"/> (in the caller's dispose scope).</summary>
    public (Tensor Images, Tensor Labels) ToTensors(Device device)
    {
        var images = torch.tensor(Images, [Count, 3, Height, Width], dtype: ScalarType.Float32, device: device);
        var labels = torch.tensor(Labels, [Count, NumClasses], dtype: ScalarType.Float32, device: device);
        return (images, labels);
    }

    /// <summary>Masks [B,H,W] int64 (255 = ignore) on <paramref name="device"/>.</summary>
    public Tensor MasksToTensor(Device device)
    {
        if (Masks == null) throw new InvalidOperationException("this batch has no masks (the loader was created with loadMasks: false or a sample has no mask)");
        using var bytes = torch.tensor(Masks, [Count, Height, Width], dtype: ScalarType.Byte);
        return bytes.to(ScalarType.Int64, device);
    }

    /// <summary>Saliency [B,H,W] float32 in [0, 1] on <paramref name="device"/>: byte v ↦ v / 254, <see cref="SaliencyOutside"/> ↦ 0.</summary>
    public Tensor SaliencyToTensor(Device device)
    {
        if (Saliency == null) throw new InvalidOperationException("this batch has no saliency (the loader was created without saliency maps)");
        using var scope = torch.NewDisposeScope();
        var bytes = torch.tensor(Saliency, [Count, Height, Width], dtype: ScalarType.Byte).to(ScalarType.Float32);
        var values = torch.where(bytes.eq(SaliencyOutside), torch.zeros_like(bytes), bytes.div(254.0));
        return values.to(device).MoveToOuterDisposeScope();
    }
}
