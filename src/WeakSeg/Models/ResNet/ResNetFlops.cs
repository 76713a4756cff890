namespace WeakSeg.Models.ResNet;

/// <summary>
/// Convolution FLOP count of a <see cref="ResNet"/> (1 multiply-add = 2 FLOPs; BatchNorm, ReLU, pooling and residual adds are
/// O(pixels·channels) and left out). A conv with k×k kernel, C_in → C_out channels and an H'×W' output costs 2·H'·W'·k²·C_in·C_out.
/// Output sides follow PyTorch: ⌊(H + 2·pad − dilation·(k − 1) − 1) / stride⌋ + 1.
/// </summary>
public static class ResNetFlops
{
    /// <summary>Forward FLOPs per image of the built stages for an <paramref name="height"/>×<paramref name="width"/> input.</summary>
    public static double Forward(ResNetConfig config, int height, int width)
    {
        config.EnsureValid();
        long h = Side(height, 7, 2, 3, 1), w = Side(width, 7, 2, 3, 1);
        double flops = Conv(h, w, 7, 3, 64);
        h = Side(h, 3, 2, 1, 1);
        w = Side(w, 3, 2, 1, 1);                                                     // max-pool
        int inChannels = 64, dilation = 1;
        for (int s = 1; s <= config.Stages; s++)
        {
            int channels = ResNetConfig.StageChannels(s), stride = s == 1 ? 1 : 2, previousDilation = dilation;
            if (config.DilatedStages.Contains(s)) { dilation *= stride; stride = 1; }
            for (int b = 0; b < config.BlocksPerStage[s - 1]; b++)
            {
                int blockStride = b == 0 ? stride : 1, firstDilation = b == 0 ? previousDilation : dilation;
                long outH = Side(h, 3, blockStride, firstDilation, firstDilation), outW = Side(w, 3, blockStride, firstDilation, firstDilation);
                flops += Conv(outH, outW, 3, inChannels, channels) + Conv(outH, outW, 3, channels, channels);
                if (blockStride != 1 || inChannels != channels) flops += Conv(outH, outW, 1, inChannels, channels);   // downsample
                (h, w, inChannels) = (outH, outW, channels);
            }
        }
        return flops;
    }

    static double Conv(long outH, long outW, int kernel, int inChannels, int outChannels) =>
        2.0 * outH * outW * kernel * kernel * inChannels * outChannels;

    static long Side(long input, int kernel, int stride, int padding, int dilation) =>
        (input + 2 * padding - dilation * (kernel - 1) - 1) / stride + 1;
}
